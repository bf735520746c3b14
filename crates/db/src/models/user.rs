//! Staff accounts: admins (everything) and staff (bookings, check-in, waivers), and their
//! second factor: the TOTP secret (read only through [`User::totp_secret`], never part of
//! [`User`], so it cannot reach a log line through `Debug`) and the hashed recovery codes.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{two_factor_recovery_codes, users};

diesel::define_sql_function! {
    /// SQL `lower(text)`, matching the `users_email_lower` unique index.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When TOTP was switched on (confirmed with a code); None: off.
    pub totp_enabled_at: Option<DateTime<Utc>>,
    /// An admin requires a second factor of this account.
    pub two_factor_required: bool,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
}

/// Plain methods.
impl User {
    pub fn totp_enabled(&self) -> bool {
        self.totp_enabled_at.is_some()
    }
}

/// Database methods.
impl User {
    pub fn insert(conn: &mut PgConnection, new: &NewUser) -> QueryResult<User> {
        diesel::insert_into(users::table)
            .values(new)
            .returning(User::as_returning())
            .get_result(conn)
    }

    /// Finds a user by email, ignoring case.
    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Option<User>> {
        users::table
            .find(id)
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(lower(users::email).eq(email.trim().to_lowercase()))
            .select(User::as_select())
            .first(conn)
            .optional()
    }
}

/// The second factor's database methods.
impl User {
    /// The account's TOTP secret (base32), enabled or in enrolment.
    pub fn totp_secret(conn: &mut PgConnection, id: i64) -> QueryResult<Option<String>> {
        users::table.find(id).select(users::totp_secret).first(conn)
    }

    /// Starts an enrolment: a new secret, not yet enabled. Refused (false) when TOTP is on.
    pub fn begin_totp(conn: &mut PgConnection, id: i64, secret: &str) -> QueryResult<bool> {
        let n = diesel::update(
            users::table
                .find(id)
                .filter(users::totp_enabled_at.is_null()),
        )
        .set((
            users::totp_secret.eq(secret),
            users::totp_last_step.eq(None::<i64>),
        ))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Records `step` as the last accepted time step, if it is later than the last one: true
    /// when the code may be accepted (the same or an earlier step is a replay).
    pub fn accept_totp_step(conn: &mut PgConnection, id: i64, step: i64) -> QueryResult<bool> {
        let n = diesel::update(
            users::table.find(id).filter(
                users::totp_last_step
                    .is_null()
                    .or(users::totp_last_step.lt(step)),
            ),
        )
        .set(users::totp_last_step.eq(step))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// Switches TOTP on (the enrolment was confirmed) with these recovery code hashes,
    /// replacing any earlier ones.
    pub fn enable_totp(
        conn: &mut PgConnection,
        id: i64,
        code_hashes: &[String],
    ) -> QueryResult<bool> {
        let n = diesel::update(
            users::table
                .find(id)
                .filter(users::totp_enabled_at.is_null())
                .filter(users::totp_secret.is_not_null()),
        )
        .set(users::totp_enabled_at.eq(diesel::dsl::now))
        .execute(conn)?;
        if n == 1 {
            User::replace_recovery_codes(conn, id, code_hashes)?;
        }
        Ok(n == 1)
    }

    /// Switches TOTP off: secret, last step and recovery codes gone.
    pub fn disable_totp(conn: &mut PgConnection, id: i64) -> QueryResult<()> {
        diesel::update(users::table.find(id))
            .set((
                users::totp_secret.eq(None::<String>),
                users::totp_enabled_at.eq(None::<DateTime<Utc>>),
                users::totp_last_step.eq(None::<i64>),
            ))
            .execute(conn)?;
        diesel::delete(
            two_factor_recovery_codes::table.filter(two_factor_recovery_codes::user_id.eq(id)),
        )
        .execute(conn)?;
        Ok(())
    }

    /// Sets whether a second factor is required of this account.
    pub fn set_two_factor_required(
        conn: &mut PgConnection,
        id: i64,
        required: bool,
    ) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set(users::two_factor_required.eq(required))
            .execute(conn)
    }

    /// Replaces the account's recovery codes with these hashes.
    pub fn replace_recovery_codes(
        conn: &mut PgConnection,
        id: i64,
        code_hashes: &[String],
    ) -> QueryResult<()> {
        diesel::delete(
            two_factor_recovery_codes::table.filter(two_factor_recovery_codes::user_id.eq(id)),
        )
        .execute(conn)?;
        let rows: Vec<_> = code_hashes
            .iter()
            .map(|h| {
                (
                    two_factor_recovery_codes::user_id.eq(id),
                    two_factor_recovery_codes::code_hash.eq(h),
                )
            })
            .collect();
        diesel::insert_into(two_factor_recovery_codes::table)
            .values(rows)
            .execute(conn)?;
        Ok(())
    }

    /// Uses the unused recovery code with this hash: true once, false ever after.
    pub fn use_recovery_code(
        conn: &mut PgConnection,
        id: i64,
        code_hash: &str,
    ) -> QueryResult<bool> {
        let n = diesel::update(
            two_factor_recovery_codes::table
                .filter(two_factor_recovery_codes::user_id.eq(id))
                .filter(two_factor_recovery_codes::code_hash.eq(code_hash))
                .filter(two_factor_recovery_codes::used_at.is_null()),
        )
        .set(two_factor_recovery_codes::used_at.eq(diesel::dsl::now))
        .execute(conn)?;
        Ok(n == 1)
    }

    /// How many of the account's recovery codes are still unused.
    pub fn unused_recovery_codes(conn: &mut PgConnection, id: i64) -> QueryResult<i64> {
        two_factor_recovery_codes::table
            .filter(two_factor_recovery_codes::user_id.eq(id))
            .filter(two_factor_recovery_codes::used_at.is_null())
            .count()
            .get_result(conn)
    }
}
