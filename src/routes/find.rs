//! Find my booking: a buyer who lost their mail types the address they booked with and is
//! mailed the links of every booking made with it. The page answers the same whether or not
//! the address has bookings (so it tells nobody who booked), and requests are limited per
//! client network and per address, so it cannot be used to flood someone's inbox.
//! Tests: `find_booking::*`.

use std::sync::Arc;
use std::time::Duration;

use rocket::form::{Form, FromForm};
use rocket::http::Status;
use rocket::{get, post, routes, Route, State};
use rocket_dyn_templates::Template;
use serde_json::json;

use crate::db::Db;
use crate::error::AppResult;
use crate::limiter::FailureLimit;
use crate::net::ClientKey;
use crate::routes::checkout::Page;

/// How often one client network and one address may ask (cheap to clone).
#[derive(Clone)]
pub struct FindLimits(Arc<Budgets>);

struct Budgets {
    client: FailureLimit<ClientKey>,
    email: FailureLimit<String>,
}

impl Default for FindLimits {
    fn default() -> Self {
        FindLimits(Arc::new(Budgets {
            // 5 requests, then one every 10 minutes per client network.
            client: FailureLimit::new(5, Duration::from_secs(600), 20_000),
            // 3 mails, then one every 20 minutes per address.
            email: FailureLimit::new(3, Duration::from_secs(1200), 20_000),
        }))
    }
}

impl FindLimits {
    /// Counts a request; false when the network's or the address's budget is spent. Shared
    /// by every public form that mails a typed address (find my booking, forgot password), so
    /// together they send an address at most 3 such mails per 20 minutes.
    pub(crate) fn allow(&self, client: ClientKey, email: &str) -> bool {
        let (budgets, email) = (&self.0, email.to_lowercase());
        if !budgets.client.allows(&client) || !budgets.email.allows(&email) {
            return false;
        }
        budgets.client.fail(&client);
        budgets.email.fail(&email);
        true
    }

    /// Drops entries whose budget is full again.
    pub fn tidy(&self) {
        self.0.client.tidy();
        self.0.email.tidy();
    }
}

pub fn routes() -> Vec<Route> {
    routes![find_page, find]
}

fn page(email: &str, error: Option<&str>, sent: bool) -> Template {
    let errors: std::collections::HashMap<String, String> = error
        .map(|e| ("email".to_string(), e.to_string()))
        .into_iter()
        .collect();
    let order = [crate::routes::form_errors::Field::new(
        "email",
        "find-email",
        "Email you booked with",
    )];
    let summary = crate::routes::form_errors::summary(&errors, &order);
    let title = crate::routes::form_errors::title("Find my booking", "", error.is_some());
    Template::render(
        "find_booking",
        json!({ "title": title, "email": email, "error": error, "sent": sent, "summary": summary }),
    )
}

#[get("/find-booking")]
fn find_page() -> Template {
    page("", None, false)
}

#[derive(FromForm)]
pub struct FindForm {
    #[field(default = String::new())]
    email: String,
}

#[post("/find-booking", data = "<form>")]
async fn find(
    db: &State<Db>,
    limits: &State<FindLimits>,
    client: ClientKey,
    form: Form<FindForm>,
) -> AppResult<Page> {
    let typed: String = form.email.chars().take(300).collect();
    let email = match ticketing_core::validate::email(&typed) {
        Ok(email) => email,
        Err(message) => {
            return Ok(Page::Status((
                Status::UnprocessableEntity,
                page(&typed, Some(&message), false),
            )))
        }
    };
    if !limits.allow(client, &email) {
        return Ok(Page::Status((
            Status::TooManyRequests,
            page(
                &typed,
                Some("We have sent bookings for this address or from your network a few times already. Please look in your inbox and spam folder, or try again in a while."),
                false,
            ),
        )));
    }
    let lookup = email.clone();
    db.run(move |conn| Ok(crate::outbox::booking_links(conn, &lookup)?))
        .await?;
    Ok(Page::Template(page(&email, None, true)))
}
