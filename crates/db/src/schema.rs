// @generated automatically by Diesel CLI.

diesel::table! {
    admin_sessions (id) {
        id -> Int8,
        token_hash -> Text,
        user_id -> Int8,
        csrf_token -> Text,
        ip -> Text,
        user_agent -> Text,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
        second_factor_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    attendees (id) {
        id -> Int8,
        booking_id -> Int8,
        ticket_type_id -> Int8,
        position -> Int4,
        name -> Text,
        email -> Text,
        ticket_code -> Text,
        checked_in_at -> Nullable<Timestamptz>,
        cancelled_at -> Nullable<Timestamptz>,
        cancel_state -> Nullable<Text>,
        cancel_reason -> Text,
        checked_in_by -> Nullable<Int8>,
        checked_in_device -> Nullable<Text>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        user_id -> Nullable<Int8>,
        action -> Text,
        entity -> Text,
        entity_id -> Nullable<Int8>,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
        ip -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    booking_history (id) {
        id -> Int8,
        booking_id -> Int8,
        from_state -> Nullable<Text>,
        to_state -> Text,
        note -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    booking_items (id) {
        id -> Int8,
        booking_id -> Int8,
        ticket_type_id -> Int8,
        quantity -> Int4,
        unit_price_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
    }
}

diesel::table! {
    bookings (id) {
        id -> Int8,
        reference -> Text,
        access_token -> Text,
        event_id -> Int8,
        state -> Text,
        seats -> Int4,
        total_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        buyer_name -> Text,
        buyer_email -> Text,
        buyer_phone -> Text,
        hold_expires_at -> Timestamptz,
        hold_extended -> Bool,
        idempotency_key -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        paid_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        client_key -> Nullable<Text>,
        private_link_hash -> Nullable<Text>,
        terms_version -> Nullable<Int4>,
        terms_accepted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    door_keys (event_id) {
        event_id -> Int8,
        private_pkcs8 -> Bytea,
        public_key -> Bytea,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    door_scans (id) {
        id -> Int8,
        event_id -> Int8,
        attendee_id -> Nullable<Int8>,
        device_id -> Text,
        ticket_code -> Text,
        scanned_at -> Timestamptz,
        received_at -> Timestamptz,
        user_id -> Nullable<Int8>,
        outcome -> Text,
        message -> Text,
    }
}

diesel::table! {
    events (id) {
        id -> Int8,
        slug -> Text,
        title -> Text,
        description -> Text,
        venue -> Text,
        // media (issue 15): the venue's address and coordinates, the image shown
        venue_address -> Text,
        venue_latitude -> Nullable<Float8>,
        venue_longitude -> Nullable<Float8>,
        image_hash -> Nullable<Text>,
        image_width -> Nullable<Int4>,
        image_height -> Nullable<Int4>,
        image_format -> Nullable<Text>,
        image_alt -> Text,
        timezone -> Text,
        starts_at -> Timestamptz,
        ends_at -> Timestamptz,
        capacity -> Int4,
        seats_taken -> Int4,
        visibility -> Text,
        private_token -> Nullable<Text>,
        waiver_required -> Bool,
        waiver_text -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        door_waiver_policy -> Text,
        // issue 16: one currency per event (ticket types follow it by foreign key)
        #[max_length = 3]
        currency -> Bpchar,
    }
}

diesel::table! {
    legal_pages (slug) {
        slug -> Text,
        title -> Text,
        body -> Text,
        version -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    media_images (hash) {
        hash -> Text,
        width -> Int4,
        height -> Int4,
        format -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    media_variants (hash, width) {
        hash -> Text,
        width -> Int4,
        height -> Int4,
        bytes -> Bytea,
    }
}

diesel::table! {
    organiser (id) {
        id -> Bool,
        name -> Text,
        address -> Text,
        contact_email -> Text,
        phone -> Text,
        vat_id -> Nullable<Text>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    outbox (id) {
        id -> Int8,
        kind -> Text,
        dedupe_key -> Text,
        booking_id -> Nullable<Int8>,
        attendee_id -> Nullable<Int8>,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Text,
        to_email -> Text,
        subject -> Text,
        created_at -> Timestamptz,
        sent_at -> Nullable<Timestamptz>,
        user_id -> Nullable<Int8>,
        secret -> Nullable<Text>,
    }
}

diesel::table! {
    password_links (id) {
        id -> Int8,
        user_id -> Int8,
        purpose -> Text,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    payments (id) {
        id -> Int8,
        booking_id -> Int8,
        provider -> Text,
        order_id -> Text,
        order_status -> Text,
        capture_id -> Nullable<Text>,
        capture_status -> Nullable<Text>,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        approve_url -> Text,
        capture_attempt -> Int4,
        refunded_minor -> Int8,
        late_refused -> Bool,
        reconciled_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        capture_claimed_until -> Nullable<Timestamptz>,
        unhonoured_at -> Nullable<Timestamptz>,
        buyer_cancelled_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    refunds (id) {
        id -> Int8,
        payment_id -> Int8,
        request_id -> Text,
        paypal_refund_id -> Nullable<Text>,
        amount_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        status -> Text,
        note -> Text,
        created_at -> Timestamptz,
        attempted_at -> Timestamptz,
        form_token -> Nullable<Text>,
        automatic -> Bool,
        attendee_id -> Nullable<Int8>,
    }
}

diesel::table! {
    ticket_types (id) {
        id -> Int8,
        event_id -> Int8,
        name -> Text,
        description -> Text,
        price_minor -> Int8,
        #[max_length = 3]
        currency -> Bpchar,
        capacity -> Int4,
        seats_taken -> Int4,
        sales_open_at -> Nullable<Timestamptz>,
        sales_close_at -> Nullable<Timestamptz>,
        max_per_booking -> Int4,
        position -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    waiver_texts (id) {
        id -> Int8,
        event_id -> Int8,
        version -> Int4,
        body -> Text,
        sha256 -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    waivers (id) {
        id -> Int8,
        attendee_id -> Int8,
        token -> Text,
        waiver_text_id -> Nullable<Int8>,
        signed_name -> Nullable<Text>,
        consent -> Bool,
        signed_at -> Nullable<Timestamptz>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        text_sha256 -> Nullable<Text>,
        created_at -> Timestamptz,
        signed_at_door -> Bool,
        signed_by_user_id -> Nullable<Int8>,
    }
}

diesel::table! {
    webhook_events (id) {
        id -> Int8,
        event_id -> Text,
        event_type -> Text,
        resource_type -> Text,
        resource_id -> Text,
        order_id -> Nullable<Text>,
        body -> Jsonb,
        received_at -> Timestamptz,
        processed_at -> Nullable<Timestamptz>,
        outcome -> Text,
        attempts -> Int4,
        attempted_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    two_factor_recovery_codes (id) {
        id -> Int8,
        user_id -> Int8,
        code_hash -> Text,
        created_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        totp_secret -> Nullable<Text>,
        totp_enabled_at -> Nullable<Timestamptz>,
        totp_last_step -> Nullable<Int8>,
        two_factor_required -> Bool,
    }
}

diesel::joinable!(admin_sessions -> users (user_id));
diesel::joinable!(audit_log -> users (user_id));
diesel::joinable!(attendees -> bookings (booking_id));
diesel::joinable!(attendees -> ticket_types (ticket_type_id));
diesel::joinable!(booking_history -> bookings (booking_id));
diesel::joinable!(booking_items -> bookings (booking_id));
diesel::joinable!(booking_items -> ticket_types (ticket_type_id));
diesel::joinable!(bookings -> events (event_id));
diesel::joinable!(door_keys -> events (event_id));
diesel::joinable!(door_scans -> events (event_id));
diesel::joinable!(payments -> bookings (booking_id));
diesel::joinable!(outbox -> bookings (booking_id));
diesel::joinable!(password_links -> users (user_id));
diesel::joinable!(waivers -> attendees (attendee_id));
diesel::joinable!(waivers -> waiver_texts (waiver_text_id));
diesel::joinable!(waiver_texts -> events (event_id));
diesel::joinable!(refunds -> payments (payment_id));
diesel::joinable!(refunds -> attendees (attendee_id));
diesel::joinable!(ticket_types -> events (event_id));
diesel::joinable!(two_factor_recovery_codes -> users (user_id));
diesel::joinable!(media_variants -> media_images (hash));

diesel::allow_tables_to_appear_in_same_query!(
    admin_sessions,
    attendees,
    audit_log,
    booking_history,
    booking_items,
    bookings,
    door_keys,
    door_scans,
    events,
    legal_pages,
    media_images,
    media_variants,
    organiser,
    outbox,
    password_links,
    payments,
    refunds,
    ticket_types,
    two_factor_recovery_codes,
    users,
    waiver_texts,
    waivers,
    webhook_events,
);
