//! Migrations: up on an empty database, all the way down, and up again.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::MigrationHarness;
use ticketing::db::MIGRATIONS;

use crate::helpers::TestDb;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn table_count(conn: &mut PgConnection) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS n FROM information_schema.tables \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations'",
    )
    .get_result::<Count>(conn)
    .unwrap()
    .n
}

#[test]
fn migrations_go_up_down_and_up_again() {
    let db = TestDb::empty();
    let mut conn = db.conn();
    assert_eq!(table_count(&mut conn), 0);

    let applied = ticketing::db::run_migrations(&mut conn).unwrap();
    assert!(!applied.is_empty());
    let tables = table_count(&mut conn);
    assert!(tables >= 3, "tables after up: {tables}");

    conn.revert_all_migrations(MIGRATIONS).unwrap();
    assert_eq!(table_count(&mut conn), 0, "down.sql leaves tables behind");

    let again = ticketing::db::run_migrations(&mut conn).unwrap();
    assert_eq!(again.len(), applied.len());
    assert_eq!(table_count(&mut conn), tables);
    assert!(!conn.has_pending_migration(MIGRATIONS).unwrap());
}
