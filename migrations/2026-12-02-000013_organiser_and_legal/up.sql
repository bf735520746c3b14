-- Who sells the tickets (issue 15): one row, edited at /admin/settings, named in the
-- footer of every page and mail and on every event page.
CREATE TABLE organiser (
    id            BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
    name          TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    address       TEXT NOT NULL CHECK (length(address) BETWEEN 1 AND 1000),
    contact_email TEXT NOT NULL CHECK (length(contact_email) BETWEEN 3 AND 254),
    phone         TEXT NOT NULL CHECK (length(phone) BETWEEN 1 AND 50),
    vat_id        TEXT CHECK (vat_id IS NULL OR length(vat_id) BETWEEN 1 AND 50),
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The four legal pages, Markdown, edited at /admin/legal/<slug>; `version` goes up by one
-- on every save, and a booking records the terms version its buyer accepted.
CREATE TABLE legal_pages (
    slug       TEXT PRIMARY KEY CHECK (slug IN ('imprint', 'privacy', 'terms', 'refunds')),
    title      TEXT NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    body       TEXT NOT NULL CHECK (length(body) <= 100000),
    version    INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE bookings
    ADD COLUMN terms_version INTEGER,
    ADD COLUMN terms_accepted_at TIMESTAMPTZ,
    ADD CONSTRAINT bookings_terms_together
        CHECK ((terms_version IS NULL) = (terms_accepted_at IS NULL));

INSERT INTO organiser (name, address, contact_email, phone, vat_id) VALUES (
    'Beispiel Events GmbH',
    E'Musterstraße 12\n10115 Berlin\nDeutschland',
    'kontakt@example.org',
    '+49 30 1234567',
    'DE123456789'
);

INSERT INTO legal_pages (slug, title, body) VALUES
('imprint', 'Imprint (Impressum)', $md$
Information according to § 5 DDG (Digitale-Dienste-Gesetz).

**Beispiel Events GmbH**\
Musterstraße 12\
10115 Berlin\
Deutschland

**Represented by** the managing director Erika Musterfrau.

**Contact**\
Phone: +49 30 1234567\
Email: kontakt@example.org

**Register entry**\
Registered in the commercial register (Handelsregister) of the Amtsgericht Berlin-Charlottenburg, HRB 000000.

**VAT identification number** according to § 27a Umsatzsteuergesetz: DE123456789

**Responsible for the content** according to § 18 (2) MStV: Erika Musterfrau, address as above.

**Consumer dispute resolution**\
We are neither willing nor obliged to take part in dispute resolution proceedings before a consumer arbitration board.
$md$),
('privacy', 'Privacy notice', $md$
This notice explains which personal data this ticket shop stores, why, and for how long (Art. 13 GDPR).

## Controller

Beispiel Events GmbH, Musterstraße 12, 10115 Berlin, Deutschland — kontakt@example.org, +49 30 1234567.

## What we store

- **Booking details**: the buyer's name, email address and phone number, and each attendee's name (and email address if given), to issue the tickets and contact you about the event (Art. 6 (1) (b) GDPR).
- **Payments**: payments are handled by PayPal (Europe) S.à r.l. et Cie, S.C.A., 22-24 Boulevard Royal, L-2449 Luxembourg. We store the PayPal order and capture identifiers, amounts and the payment state — never your card or bank details. PayPal's own privacy statement applies to what you enter there.
- **Signed waivers**: for events that require one, the full name you type, your consent, the time of signing, your IP address, your browser's user agent and a fingerprint of the exact text you signed, as proof of the declaration (Art. 6 (1) (b) and (f) GDPR).
- **Emails sent to you**: confirmation, waiver and refund mails, with their delivery state.
- **Server logs**: the time, requested page and status of each request, kept for at most 14 days to keep the site secure.

The site sets no tracking or advertising cookies.

## How long we keep it

Bookings and payment records are kept for ten years after the end of the year of the booking, as German commercial and tax law requires (§ 147 AO, § 257 HGB). Signed waivers are kept for three years after the end of the year of the event (the regular limitation period, § 195 BGB). Holds that were never completed are deleted after 30 days.

## Your rights

You have the right to access, rectification, erasure, restriction of processing, data portability and to object (Art. 15–21 GDPR), and to lodge a complaint with a supervisory authority, for example the Berliner Beauftragte für Datenschutz und Informationsfreiheit. Write to kontakt@example.org.
$md$),
('terms', 'Terms and conditions', $md$
These terms apply to every ticket booking made on this site with Beispiel Events GmbH (the organiser).

1. **Contract.** Choosing tickets holds them for a limited time. The contract is made when you confirm the booking on the review page and, for paid tickets, the payment with PayPal is completed. You receive a confirmation by email.
2. **Prices.** All prices are in the currency shown and include the statutory VAT.
3. **Tickets.** Each ticket is personal to the attendee named on it and valid once. Please show its QR code at the entrance.
4. **Waivers.** Where an event requires a waiver, every attendee must sign it before the event; without a signed waiver entry may be refused.
5. **No right of withdrawal.** Under § 312g (2) no. 9 BGB there is no right of withdrawal for leisure events booked for a specific date. Cancellations and refunds follow our refund policy.
6. **Changes and cancellation by the organiser.** If an event is cancelled, you get the full ticket price back. If it is moved, you may keep your ticket or ask for a refund.
7. **Liability.** We are liable without limitation for intent and gross negligence and for injury to life, body or health; otherwise only for breach of essential contractual duties, limited to the foreseeable damage.
8. **Law.** German law applies; mandatory consumer protection rules of your country of residence remain unaffected.
$md$),
('refunds', 'Refund policy', $md$
- **Up to 14 days before the event** you can cancel your booking and get the full ticket price back. Write to kontakt@example.org with your booking reference.
- **From 13 days to 48 hours before the event** we refund 50 % of the ticket price.
- **Later than 48 hours before the event** tickets cannot be refunded, but you may pass a ticket on to someone else: tell us the new attendee's name.
- **If we cancel the event**, every booking is refunded in full automatically.

Refunds are paid back through PayPal to the account you paid with, usually within a few days. Free tickets can be cancelled at any time.
$md$);
