//! The claim-due-rows helper every job uses (`ticketing_db::claim`): rows being claimed by
//! one instance are skipped by another, and a claimed row is not due again until its lease
//! passes.

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use ticketing_db::claim::{claim_due, Due};

use crate::helpers::TestDb;

const DUE: Due<'static> = Due {
    table: "webhook_events",
    alias: "w",
    from: "webhook_events w",
    condition: "w.processed_at IS NULL
                AND (w.attempted_at IS NULL OR w.attempted_at < now() - interval '2 minutes')",
    order: "w.received_at",
    lease: "attempted_at = now()",
};

fn insert_rows(conn: &mut PgConnection, n: usize) {
    for i in 0..n {
        conn.batch_execute(&format!(
            "INSERT INTO webhook_events (event_id, event_type, resource_type, resource_id, body, outcome)
             VALUES ('WH-{i}', 'CHECKOUT.ORDER.APPROVED', 'checkout-order', 'O-{i}', '{{}}', '')"
        ))
        .unwrap();
    }
}

#[test]
fn two_instances_never_claim_the_same_row_and_a_lease_holds() {
    let db = TestDb::migrated();
    let (mut a, mut b) = (db.conn(), db.conn());
    insert_rows(&mut a, 30);
    // A claims ten inside a transaction it keeps open: those rows stay locked.
    a.batch_execute("BEGIN").unwrap();
    let first = claim_due(&mut a, &DUE, 10).unwrap();
    assert_eq!(first.len(), 10);
    // B, at the same time, gets only the other twenty.
    let second = claim_due(&mut b, &DUE, 50).unwrap();
    assert_eq!(second.len(), 20);
    assert!(
        first.iter().all(|id| !second.contains(id)),
        "a row was claimed twice"
    );
    a.batch_execute("COMMIT").unwrap();
    // Everything is leased now: nothing is due until the lease passes.
    assert!(claim_due(&mut b, &DUE, 50).unwrap().is_empty());
    b.batch_execute("UPDATE webhook_events SET attempted_at = now() - interval '3 minutes' WHERE id IN (SELECT id FROM webhook_events ORDER BY id LIMIT 5)")
        .unwrap();
    assert_eq!(claim_due(&mut a, &DUE, 50).unwrap().len(), 5);
}
