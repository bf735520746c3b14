-- Event images, venue addresses and coordinates (issue 15, the event page).
--
-- An uploaded image is decoded and re-encoded (no metadata survives) into a few widths;
-- every variant is stored here, in PostgreSQL, so the one database holds everything the
-- site serves and the nightly pg_dump backs the images up with the events that show them
-- (no second volume to back up, restore or keep in step on the one VPS). Images are keyed
-- by a hash of the uploaded bytes: the URL names the content and never the event, so a
-- private event's image leaks nothing about it, and the same upload is stored once.
CREATE TABLE media_images (
    hash       TEXT PRIMARY KEY CHECK (hash ~ '^[0-9a-f]{32}$'),
    -- the largest variant's size and the stored format
    width      INTEGER NOT NULL CHECK (width BETWEEN 1 AND 1600),
    height     INTEGER NOT NULL CHECK (height BETWEEN 1 AND 16384),
    format     TEXT NOT NULL CHECK (format IN ('jpeg', 'png')),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- the target of events' composite reference below
    UNIQUE (hash, width, height, format)
);

CREATE TABLE media_variants (
    hash   TEXT NOT NULL REFERENCES media_images (hash) ON DELETE CASCADE,
    width  INTEGER NOT NULL CHECK (width BETWEEN 1 AND 1600),
    height INTEGER NOT NULL CHECK (height BETWEEN 1 AND 16384),
    bytes  BYTEA NOT NULL,
    PRIMARY KEY (hash, width)
);

ALTER TABLE events
    ADD COLUMN venue_address TEXT NOT NULL DEFAULT '' CHECK (length(venue_address) <= 1000),
    ADD COLUMN venue_latitude DOUBLE PRECISION
        CHECK (venue_latitude BETWEEN -90 AND 90),
    ADD COLUMN venue_longitude DOUBLE PRECISION
        CHECK (venue_longitude BETWEEN -180 AND 180),
    ADD CONSTRAINT events_venue_coordinates_together
        CHECK ((venue_latitude IS NULL) = (venue_longitude IS NULL)),
    -- The image shown, with its size and format copied from media_images (the composite
    -- reference keeps them equal) so an event page needs no second query to lay it out.
    ADD COLUMN image_hash TEXT,
    ADD COLUMN image_width INTEGER,
    ADD COLUMN image_height INTEGER,
    ADD COLUMN image_format TEXT,
    ADD COLUMN image_alt TEXT NOT NULL DEFAULT '' CHECK (length(image_alt) <= 300),
    ADD CONSTRAINT events_image_fk
        FOREIGN KEY (image_hash, image_width, image_height, image_format)
        REFERENCES media_images (hash, width, height, format),
    ADD CONSTRAINT events_image_together
        CHECK ((image_hash IS NULL AND image_width IS NULL AND image_height IS NULL
                AND image_format IS NULL AND image_alt = '')
            OR (image_hash IS NOT NULL AND image_width IS NOT NULL AND image_height IS NOT NULL
                AND image_format IS NOT NULL AND length(btrim(image_alt)) > 0));

CREATE INDEX events_image_hash ON events (image_hash) WHERE image_hash IS NOT NULL;
