//! The legal pages (`/legal/<slug>`): imprint, privacy notice, terms and refund policy, as
//! the admins wrote them in Markdown, rendered and sanitised by [`crate::legal::render_markdown`].
//! Any other slug is the site's 404 (`legal::terms_render_markdown_and_strip_script`).

use rocket::{get, routes, Route, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::models::{LegalPage, LEGAL_SLUGS};

pub fn routes() -> Vec<Route> {
    routes![legal_page]
}

#[get("/<slug>")]
async fn legal_page(db: &State<Db>, slug: &str) -> AppResult<Template> {
    if !LEGAL_SLUGS.contains(&slug) {
        return Err(AppError::not_found());
    }
    let slug = slug.to_string();
    let page = db
        .run(move |conn| Ok(LegalPage::find(conn, &slug)?))
        .await?;
    let page = page.ok_or_else(AppError::not_found)?;
    Ok(Template::render(
        "legal",
        json!({
            "title": page.title,
            "body_html": crate::legal::render_markdown(&page.body),
            "version": page.version,
            "updated": page.updated_at.format("%-d %B %Y").to_string(),
        }),
    ))
}
