//! The server the suite runs on: with `EXPECT_PG_MAJOR` set (scripts/test sets it to 13 when it
//! starts its own PostgreSQL 13, the version production runs), the server must be of that
//! major version, so that the suite cannot pass on another PostgreSQL unnoticed.

use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::helpers::admin_url;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    server_version_num: String,
}

#[test]
fn server_is_the_expected_major_version() {
    let mut conn = PgConnection::establish(&admin_url()).expect("connect to the test server");
    let num = diesel::sql_query("SHOW server_version_num")
        .get_result::<Setting>(&mut conn)
        .unwrap()
        .server_version_num;
    // server_version_num is major * 10000 + minor since PostgreSQL 10 (130023 is 13.23).
    let major = num.parse::<u32>().expect("server_version_num is a number") / 10000;
    eprintln!("test server: PostgreSQL server_version_num {num} (major {major})");
    if let Some(want) = std::env::var("EXPECT_PG_MAJOR")
        .ok()
        .filter(|w| !w.is_empty())
    {
        assert_eq!(
            major.to_string(),
            want,
            "the tests run on PostgreSQL {major} (server_version_num {num}), \
             but EXPECT_PG_MAJOR asks for {want}"
        );
    }
}
