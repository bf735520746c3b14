// @generated automatically by Diesel CLI.

diesel::table! {
    events (id) {
        id -> Int8,
        slug -> Text,
        title -> Text,
        description -> Text,
        venue -> Text,
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
    users (id) {
        id -> Int8,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(ticket_types -> events (event_id));

diesel::allow_tables_to_appear_in_same_query!(events, ticket_types, users,);
