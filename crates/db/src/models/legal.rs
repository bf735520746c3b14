//! Who sells the tickets and the four legal pages (issue 15): the single organiser row
//! (name, address, contact, VAT id) and the imprint, privacy notice, terms and refund policy,
//! Markdown with a version that goes up on every edit (a booking records the terms version
//! its buyer accepted).

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::{legal_pages, organiser};

/// The slugs of the legal pages, in footer order.
pub const LEGAL_SLUGS: [&str; 4] = ["imprint", "privacy", "terms", "refunds"];

/// The organiser named on every page and mail.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = organiser, check_for_backend(diesel::pg::Pg))]
pub struct Organiser {
    pub name: String,
    pub address: String,
    pub contact_email: String,
    pub phone: String,
    pub vat_id: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// The fields an admin edits.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = organiser, treat_none_as_null = true)]
pub struct OrganiserChange {
    pub name: String,
    pub address: String,
    pub contact_email: String,
    pub phone: String,
    pub vat_id: Option<String>,
}

impl Organiser {
    /// The organiser (the migration seeds the one row).
    pub fn get(conn: &mut PgConnection) -> QueryResult<Organiser> {
        organiser::table.select(Organiser::as_select()).first(conn)
    }

    /// Saves `change` and returns the row as it is now.
    pub fn update(conn: &mut PgConnection, change: &OrganiserChange) -> QueryResult<Organiser> {
        diesel::update(organiser::table)
            .set((change, organiser::updated_at.eq(diesel::dsl::now)))
            .returning(Organiser::as_returning())
            .get_result(conn)
    }
}

/// One legal page.
#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = legal_pages, check_for_backend(diesel::pg::Pg))]
pub struct LegalPage {
    pub slug: String,
    pub title: String,
    pub body: String,
    pub version: i32,
    pub updated_at: DateTime<Utc>,
}

impl LegalPage {
    pub fn find(conn: &mut PgConnection, slug: &str) -> QueryResult<Option<LegalPage>> {
        legal_pages::table
            .find(slug)
            .select(LegalPage::as_select())
            .first(conn)
            .optional()
    }

    /// Every page, in [`LEGAL_SLUGS`] order.
    pub fn all(conn: &mut PgConnection) -> QueryResult<Vec<LegalPage>> {
        let mut pages: Vec<LegalPage> = legal_pages::table
            .select(LegalPage::as_select())
            .load(conn)?;
        pages.sort_by_key(|p| LEGAL_SLUGS.iter().position(|s| *s == p.slug));
        Ok(pages)
    }

    /// The current version of the terms (what a buyer accepts on the review page).
    pub fn terms_version(conn: &mut PgConnection) -> QueryResult<i32> {
        legal_pages::table
            .find("terms")
            .select(legal_pages::version)
            .first(conn)
    }

    /// Saves a new title and body and bumps the version by one; `None` for an unknown slug.
    pub fn save(
        conn: &mut PgConnection,
        slug: &str,
        title: &str,
        body: &str,
    ) -> QueryResult<Option<LegalPage>> {
        diesel::update(legal_pages::table.find(slug))
            .set((
                legal_pages::title.eq(title),
                legal_pages::body.eq(body),
                legal_pages::version.eq(legal_pages::version + 1),
                legal_pages::updated_at.eq(diesel::dsl::now),
            ))
            .returning(LegalPage::as_returning())
            .get_result(conn)
            .optional()
    }
}
