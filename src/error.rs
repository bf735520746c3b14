//! The HTTP error type. It carries a status, a message safe to show the user, and the source
//! error for the log. It renders the HTML error page, or JSON when the client asked for JSON.
//! The layers below return [`ticketing_db::Error`] with an [`ErrorKind`]; [`status_of`] is
//! the one place a kind becomes a status. Policy (from `ticketing_db::error`): Diesel
//! `NotFound` → 404; no connection from the pool or a lost connection → 503; every other
//! database or internal failure → 500 with the details only in the log.

use std::fmt;

use rocket::http::{ContentType, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket::serde::json::Json;
use rocket_dyn_templates::Template;
use serde_json::json;
use ticketing_db::ErrorKind;

pub type AppResult<T> = Result<T, AppError>;

#[derive(Debug)]
pub struct AppError {
    pub status: Status,
    /// Shown to the user; never contains internal details.
    pub message: String,
    /// Logged, never shown.
    pub source: Option<String>,
}

impl AppError {
    pub fn new(status: Status, message: impl Into<String>) -> AppError {
        AppError {
            status,
            message: message.into(),
            source: None,
        }
    }

    /// Attaches the underlying cause (logged, never shown).
    pub fn with_source(mut self, source: impl fmt::Display) -> AppError {
        self.source = Some(source.to_string());
        self
    }

    pub fn not_found() -> AppError {
        AppError::new(Status::NotFound, default_message(Status::NotFound))
    }

    pub fn bad_request(message: impl Into<String>) -> AppError {
        AppError::new(Status::BadRequest, message)
    }

    pub fn unavailable(source: impl fmt::Display) -> AppError {
        AppError {
            status: Status::ServiceUnavailable,
            message: default_message(Status::ServiceUnavailable).into(),
            source: Some(source.to_string()),
        }
    }

    pub fn internal(source: impl fmt::Display) -> AppError {
        AppError {
            status: Status::InternalServerError,
            message: default_message(Status::InternalServerError).into(),
            source: Some(source.to_string()),
        }
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status.code, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

/// The status for each kind of failure the layers below report: the one place a domain
/// error becomes an HTTP status (test `error_kinds_map_to_statuses`).
pub fn status_of(kind: ErrorKind) -> Status {
    match kind {
        ErrorKind::BadRequest => Status::BadRequest,
        ErrorKind::Forbidden => Status::Forbidden,
        ErrorKind::NotFound => Status::NotFound,
        ErrorKind::Conflict => Status::Conflict,
        ErrorKind::TooMany => Status::TooManyRequests,
        ErrorKind::Upstream => Status::BadGateway,
        ErrorKind::Unavailable => Status::ServiceUnavailable,
        ErrorKind::Internal => Status::InternalServerError,
    }
}

impl From<ticketing_db::Error> for AppError {
    fn from(e: ticketing_db::Error) -> AppError {
        AppError {
            status: status_of(e.kind),
            message: e.message,
            source: e.source,
        }
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> AppError {
        ticketing_db::Error::from(e).into()
    }
}

impl From<diesel::r2d2::PoolError> for AppError {
    fn from(e: diesel::r2d2::PoolError) -> AppError {
        ticketing_db::Error::from(e).into()
    }
}

/// The message shown for a status when the handler gave none.
pub fn default_message(status: Status) -> &'static str {
    match status.code {
        400 => "The request could not be understood.",
        403 => "You are not allowed to do that.",
        404 => "We could not find that page. The link may be wrong or the event may no longer be available.",
        405 => "That action is not allowed here.",
        409 => "That changed while you were looking at it. Please try again.",
        413 => "That was too large.",
        422 => "Some of what was sent could not be processed.",
        429 => "Too many attempts. Please wait a moment and try again.",
        503 => "The site is briefly unavailable. Please try again in a moment.",
        _ => "Something went wrong on our side. Please try again.",
    }
}

fn wants_json(req: &Request<'_>) -> bool {
    req.accept()
        .map(|a| a.preferred().media_type().is_json())
        .unwrap_or(false)
        || req.format().map(|f| f.is_json()).unwrap_or(false) && req.accept().is_none()
}

/// Renders an error response for `status` with `message`: JSON for JSON clients, else the
/// HTML error page. Shared by [`AppError`] and the catchers so that, for example, a wrong
/// private-event token and a missing page give byte-identical 404 responses.
pub fn render_error(req: &Request<'_>, status: Status, message: &str) -> response::Result<'static> {
    if wants_json(req) {
        let body = Json(json!({ "error": { "status": status.code, "message": message } }));
        return Response::build_from(body.respond_to(req)?)
            .status(status)
            .header(ContentType::JSON)
            .ok();
    }
    let page = Template::render(
        "error",
        json!({
            "title": status.reason().unwrap_or("Error"),
            "status": status.code,
            "message": message,
        }),
    );
    Response::build_from(page.respond_to(req)?)
        .status(status)
        .ok()
}

impl<'r> Responder<'r, 'static> for AppError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        if self.status.code >= 500 {
            let path = crate::redact::redact(req.uri().path().as_str()).into_owned();
            tracing::error!(status = self.status.code, source = ?self.source, path = %path, "request failed");
        } else if let Some(source) = &self.source {
            tracing::debug!(status = self.status.code, source = %source, "request refused");
        }
        render_error(req, self.status, &self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_kinds_map_to_statuses() {
        let e: AppError = ticketing_db::Error::conflict("taken").into();
        assert_eq!((e.status, e.message.as_str()), (Status::Conflict, "taken"));
        let e: AppError = diesel::result::Error::NotFound.into();
        assert_eq!(e.status, Status::NotFound);
        let e: AppError = ticketing_db::Error::unavailable("db down").into();
        assert_eq!(e.status, Status::ServiceUnavailable);
        assert_eq!(e.source.as_deref(), Some("db down"));
        assert_eq!(status_of(ErrorKind::Upstream), Status::BadGateway);
    }
}
