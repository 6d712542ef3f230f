//! Diesel's view of the tables. One schema serves both backends because the
//! two migration sets give every column the same SQL type (only the blob's
//! spelling differs, and both map to `Binary`).

diesel::table! {
    players (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
    }
}

diesel::table! {
    maps (key) {
        key -> Text,
        name -> Text,
        content_hash -> BigInt,
        width -> Integer,
        height -> Integer,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> BigInt,
        map -> Text,
        scenario -> Nullable<Text>,
        seed -> BigInt,
        players -> SmallInt,
        tick_hz -> SmallInt,
        content_version -> BigInt,
        state -> Text,
        owner_instance -> Nullable<Text>,
        owner_epoch -> BigInt,
        created_at -> BigInt,
        ended_at -> Nullable<BigInt>,
        end_reason -> Nullable<Text>,
    }
}

diesel::table! {
    checkpoints (session_id) {
        session_id -> BigInt,
        epoch -> BigInt,
        tick -> BigInt,
        state_hash -> BigInt,
        snapshot -> Binary,
        written_at -> BigInt,
    }
}

diesel::table! {
    results (session_id, seat) {
        session_id -> BigInt,
        seat -> SmallInt,
        map -> Text,
        player_id -> Nullable<Text>,
        score -> BigInt,
        kills -> BigInt,
        leaks -> BigInt,
        gold_earned -> BigInt,
        victory -> Bool,
    }
}

diesel::table! {
    match_history (session_id) {
        session_id -> BigInt,
        map -> Text,
        outcome -> Text,
        ticks -> BigInt,
        players -> SmallInt,
        ended_at -> BigInt,
    }
}

diesel::table! {
    session_log (session_id, tick, ordinal) {
        session_id -> BigInt,
        tick -> BigInt,
        ordinal -> Integer,
        command -> Binary,
    }
}

diesel::table! {
    content_versions (version) {
        version -> BigInt,
        files -> Binary,
        created_at -> BigInt,
    }
}

diesel::joinable!(results -> players (player_id));
diesel::joinable!(results -> match_history (session_id));

diesel::allow_tables_to_appear_in_same_query!(
    players,
    maps,
    sessions,
    checkpoints,
    results,
    match_history,
    session_log,
    content_versions,
);
