//! The organiser and the legal pages (admins only, issue 15): `/admin/settings` edits who
//! sells the tickets (name, address, contact email and phone, VAT id), `/admin/legal/<slug>`
//! edits the imprint, privacy notice, terms and refund policy in Markdown. A bad field comes
//! back with its message next to it and the input kept; a save is audited, bumps the page's
//! version, forgets the cached public pages and replaces this instance's footer at once
//! (tests `legal::organiser_settings_are_validated`,
//! `legal::admin_edits_a_page_and_the_version_goes_up`).

use std::collections::HashMap;

use diesel::prelude::*;
use rocket::form::FromForm;
use rocket::http::Status;
use rocket::request::FlashMessage;
use rocket::response::{Flash, Redirect};
use rocket::{get, post, State};
use serde_json::json;

use super::page;
use crate::auth::{self, Admin, AdminForm};
use crate::cache::PublicCaches;
use crate::db::Db;
use crate::error::{AppError, AppResult};
use crate::legal::SiteFooter;
use crate::models::{LegalPage, Organiser, OrganiserChange, LEGAL_SLUGS};
use crate::routes::checkout::Page;
use ticketing_core::validate;

/// Longest page body accepted (the database allows 100,000 characters).
const MAX_BODY: usize = 100_000;

#[get("/settings")]
pub(super) async fn settings_page(
    db: &State<Db>,
    admin: Admin,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<rocket_dyn_templates::Template> {
    let o = db.run(|conn| Ok(Organiser::get(conn)?)).await?;
    let pages = db.run(|conn| Ok(LegalPage::all(conn)?)).await?;
    Ok(page(
        "admin/settings",
        &admin.0,
        json!({
            "title": "Organiser and legal pages",
            "notice": flash.map(|f| f.message().to_string()),
            "errors": {},
            "form": {
                "name": o.name,
                "address": o.address,
                "contact_email": o.contact_email,
                "phone": o.phone,
                "vat_id": o.vat_id.unwrap_or_default(),
            },
            "pages": pages.iter().map(|p| json!({ "slug": p.slug, "title": p.title, "version": p.version })).collect::<Vec<_>>(),
        }),
    ))
}

#[derive(FromForm, serde::Serialize)]
pub struct OrganiserForm {
    #[field(default = String::new())]
    #[serde(skip)]
    csrf: String,
    #[field(default = String::new())]
    name: String,
    #[field(default = String::new())]
    address: String,
    #[field(default = String::new())]
    contact_email: String,
    #[field(default = String::new())]
    phone: String,
    #[field(default = String::new())]
    vat_id: String,
}

csrf_form!(OrganiserForm);

/// Checks every field; the change to save, or the message of each bad field.
fn organiser_change(f: &OrganiserForm) -> Result<OrganiserChange, HashMap<&'static str, String>> {
    let mut errors = HashMap::new();
    let name = validate::required_line(&f.name, 200, "Enter the organiser's name.")
        .map_err(|e| errors.insert("name", e))
        .ok();
    let address = validate::multi_line(&f.address, 1000)
        .and_then(|a| {
            if a.is_empty() {
                Err("Enter the organiser's postal address.".to_string())
            } else {
                Ok(a.replace("\r\n", "\n"))
            }
        })
        .map_err(|e| errors.insert("address", e))
        .ok();
    let contact_email = validate::email(&f.contact_email)
        .map_err(|e| errors.insert("contact_email", e))
        .ok();
    let phone = validate::phone(&f.phone)
        .and_then(|p| {
            if p.is_empty() {
                Err("Enter a phone number like +49 30 1234567.".to_string())
            } else {
                Ok(p)
            }
        })
        .map_err(|e| errors.insert("phone", e))
        .ok();
    let vat_id = validate::single_line(&f.vat_id, 50)
        .and_then(|v| {
            let v = v.replace(' ', "").to_uppercase();
            if v.is_empty() {
                Ok(None)
            } else if v.len() >= 4
                && v[..2].chars().all(|c| c.is_ascii_uppercase())
                && v[2..].chars().all(|c| c.is_ascii_alphanumeric())
            {
                Ok(Some(v))
            } else {
                Err("Enter a VAT id like DE123456789, or leave it empty.".to_string())
            }
        })
        .map_err(|e| errors.insert("vat_id", e))
        .ok();
    match (name, address, contact_email, phone, vat_id) {
        (Some(name), Some(address), Some(contact_email), Some(phone), Some(vat_id))
            if errors.is_empty() =>
        {
            Ok(OrganiserChange {
                name,
                address,
                contact_email,
                phone,
                vat_id,
            })
        }
        _ => Err(errors),
    }
}

#[post("/settings", data = "<form>")]
pub(super) async fn save_settings(
    db: &State<Db>,
    footer: &State<SiteFooter>,
    caches: PublicCaches<'_>,
    form: AdminForm<OrganiserForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let change = match organiser_change(&f) {
        Ok(change) => change,
        Err(errors) => {
            let pages = db.run(|conn| Ok(LegalPage::all(conn)?)).await?;
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(
                    "admin/settings",
                    &staff,
                    json!({
                        "title": "Organiser and legal pages",
                        "notice": null,
                        "errors": errors,
                        "form": f,
                        "pages": pages.iter().map(|p| json!({ "slug": p.slug, "title": p.title, "version": p.version })).collect::<Vec<_>>(),
                    }),
                ),
            )));
        }
    };
    let s2 = staff.clone();
    db.run(move |conn| {
        conn.transaction(|conn| {
            let before = Organiser::get(conn)?;
            let after = Organiser::update(conn, &change)?;
            auth::audit(
                conn,
                &s2,
                "organiser.update",
                "organiser",
                None,
                Some(json!(before)),
                Some(json!(after)),
            )
        })?;
        Ok(())
    })
    .await?;
    caches.invalidate();
    footer.reload(db).await?;
    Ok(Page::Flash(Flash::success(
        Redirect::to("/admin/settings"),
        "Organiser saved.",
    )))
}

#[get("/legal/<slug>")]
pub(super) async fn legal_edit_page(
    db: &State<Db>,
    admin: Admin,
    slug: &str,
    flash: Option<FlashMessage<'_>>,
) -> AppResult<rocket_dyn_templates::Template> {
    let page_row = find(db, slug).await?;
    Ok(page(
        "admin/legal_page",
        &admin.0,
        json!({
            "title": format!("Edit: {}", page_row.title),
            "notice": flash.map(|f| f.message().to_string()),
            "errors": {},
            "slug": page_row.slug,
            "version": page_row.version,
            "form": { "title": page_row.title, "body": page_row.body },
        }),
    ))
}

async fn find(db: &Db, slug: &str) -> AppResult<LegalPage> {
    if !LEGAL_SLUGS.contains(&slug) {
        return Err(AppError::not_found());
    }
    let slug = slug.to_string();
    db.run(move |conn| Ok(LegalPage::find(conn, &slug)?))
        .await?
        .ok_or_else(AppError::not_found)
}

#[derive(FromForm, serde::Serialize)]
pub struct LegalForm {
    #[field(default = String::new())]
    #[serde(skip)]
    csrf: String,
    #[field(default = String::new())]
    title: String,
    #[field(default = String::new())]
    body: String,
}

csrf_form!(LegalForm);

#[post("/legal/<slug>", data = "<form>")]
pub(super) async fn save_legal(
    db: &State<Db>,
    footer: &State<SiteFooter>,
    caches: PublicCaches<'_>,
    slug: &str,
    form: AdminForm<LegalForm>,
) -> AppResult<Page> {
    let AdminForm { staff, form: f } = form;
    let current = find(db, slug).await?;
    let mut errors: HashMap<&str, String> = HashMap::new();
    let title = validate::required_line(&f.title, 200, "Enter the page's title.")
        .map_err(|e| errors.insert("title", e))
        .ok();
    let body = validate::multi_line(&f.body, MAX_BODY)
        .and_then(|b| {
            if b.is_empty() {
                Err("Write the page's text.".to_string())
            } else {
                Ok(b.replace("\r\n", "\n"))
            }
        })
        .map_err(|e| errors.insert("body", e))
        .ok();
    let (Some(title), Some(body)) = (title, body) else {
        return Ok(Page::Status((
            Status::UnprocessableEntity,
            page(
                "admin/legal_page",
                &staff,
                json!({
                    "title": format!("Edit: {}", current.title),
                    "notice": null,
                    "errors": errors,
                    "slug": current.slug,
                    "version": current.version,
                    "form": f,
                }),
            ),
        )));
    };
    let (s2, slug2) = (staff.clone(), current.slug.clone());
    let saved = db
        .run(move |conn| {
            conn.transaction(|conn| {
                let before = LegalPage::find(conn, &slug2)?.ok_or(diesel::NotFound)?;
                let after = LegalPage::save(conn, &slug2, &title, &body)?.ok_or(diesel::NotFound)?;
                auth::audit(
                    conn,
                    &s2,
                    "legal_page.update",
                    "legal_page",
                    None,
                    Some(json!({ "slug": before.slug, "title": before.title, "version": before.version, "body": before.body })),
                    Some(json!({ "slug": after.slug, "title": after.title, "version": after.version, "body": after.body })),
                )?;
                Ok::<_, diesel::result::Error>(after)
            })
            .map_err(AppError::from)
        })
        .await?;
    caches.invalidate();
    footer.reload(db).await?;
    Ok(Page::Flash(Flash::success(
        Redirect::to(format!("/admin/legal/{}", saved.slug)),
        format!("Saved as version {}.", saved.version),
    )))
}
