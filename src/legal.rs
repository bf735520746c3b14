//! The organiser and the legal pages as every page shows them (issue 15): the footer's
//! organiser name, contact and links to the imprint, privacy notice, terms and refund policy
//! come from a small in-memory copy ([`SiteFooter`]) read by the templates' `footer()`
//! function, so no page pays an extra query for it. The copy is loaded at start, replaced at
//! once when an admin saves (`legal::admin_edits_a_page_and_the_version_goes_up`), and
//! reloaded every [`REFRESH_EVERY`] so other instances catch up. Also the one Markdown
//! renderer of the legal pages: CommonMark to HTML, then sanitised by `ammonia`, so no raw
//! HTML or script of a page body reaches a browser (`legal::terms_render_markdown_and_strip_script`).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rocket::fairing::AdHoc;
use serde_json::{json, Value};

use crate::db::Db;
use crate::error::AppError;
use crate::models::{LegalPage, Organiser};

/// How often each instance reloads its copy of the footer.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);

/// The footer as the templates see it: `{ organiser: {...} | null, pages: [{slug, title, url}] }`.
#[derive(Clone)]
pub struct SiteFooter(Arc<RwLock<Value>>);

impl Default for SiteFooter {
    fn default() -> Self {
        SiteFooter(Arc::new(RwLock::new(
            json!({ "organiser": null, "pages": [] }),
        )))
    }
}

impl SiteFooter {
    /// The current copy (no organiser and no pages until the first load succeeds).
    pub fn get(&self) -> Value {
        self.0.read().expect("footer lock").clone()
    }

    fn set(&self, value: Value) {
        *self.0.write().expect("footer lock") = value;
    }

    /// Reads the organiser and the page titles from the database into the copy.
    pub async fn reload(&self, db: &Db) -> Result<(), AppError> {
        let (organiser, pages) = db
            .run(|conn| Ok((Organiser::get(conn)?, LegalPage::all(conn)?)))
            .await?;
        self.set(footer_value(&organiser, &pages));
        Ok(())
    }

    /// Loads the copy before the first request and keeps it fresh while the server runs. A
    /// database that is down at start leaves the footer without the organiser until the next
    /// refresh, rather than stopping the app.
    pub fn fairing(&self) -> AdHoc {
        let footer = self.clone();
        AdHoc::on_ignite("site footer", |rocket| async move {
            if let Some(db) = rocket.state::<Db>() {
                if let Err(e) = footer.reload(db).await {
                    tracing::warn!(error = %e, "could not load the organiser for the footer");
                }
            }
            rocket.attach(AdHoc::on_liftoff("site footer refresh", move |rocket| {
                Box::pin(async move {
                    let db = rocket.state::<Db>().expect("Db is managed").clone();
                    let mut shutdown = rocket.shutdown();
                    rocket::tokio::spawn(async move {
                        loop {
                            rocket::tokio::select! {
                                _ = &mut shutdown => break,
                                _ = rocket::tokio::time::sleep(REFRESH_EVERY) => {}
                            }
                            if let Err(e) = footer.reload(&db).await {
                                tracing::warn!(error = %e, "could not refresh the footer");
                            }
                        }
                    });
                })
            }))
        })
    }
}

/// The footer's data for `organiser` and `pages`.
pub fn footer_value(organiser: &Organiser, pages: &[LegalPage]) -> Value {
    json!({
        "organiser": {
            "name": organiser.name,
            "contact_email": organiser.contact_email,
            "phone": organiser.phone,
        },
        "pages": pages
            .iter()
            .map(|p| json!({ "slug": p.slug, "title": p.title, "url": format!("/legal/{}", p.slug) }))
            .collect::<Vec<_>>(),
    })
}

/// Markdown to HTML that is safe to show: headings, lists, emphasis, links and the like
/// survive; raw HTML, scripts, event handlers and `javascript:` links do not.
pub fn render_markdown(markdown: &str) -> String {
    let parser = pulldown_cmark::Parser::new_ext(
        markdown,
        pulldown_cmark::Options::ENABLE_TABLES | pulldown_cmark::Options::ENABLE_STRIKETHROUGH,
    );
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser);
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow"))
        .clean(&html)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::render_markdown;

    #[test]
    fn markdown_is_rendered_and_html_removed() {
        let html = render_markdown(
            "## Terms\n\n**bold** [link](https://example.org)\n\n<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n[x](javascript:alert(1))",
        );
        assert!(html.contains("<h2>Terms</h2>"), "{html}");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("href=\"https://example.org\""), "{html}");
        assert!(!html.contains("<script"), "{html}");
        assert!(!html.contains("alert(1)</"), "{html}");
        assert!(!html.contains("onerror"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
    }
}
