//! The error every layer above `core` returns: a kind, a message safe to show the user, and
//! the underlying cause for the log. Domain and application code say *what* went wrong
//! ([`ErrorKind`]); only the HTTP layer turns a kind into a status code. Policy: Diesel
//! `NotFound` → [`ErrorKind::NotFound`]; no connection from the pool or a lost connection →
//! [`ErrorKind::Unavailable`], and so is a statement cancelled by `statement_timeout` or
//! `lock_timeout`; a value PostgreSQL cannot store (a NUL byte, bytes that are
//! not UTF-8) → [`ErrorKind::BadRequest`], a second line of defence behind the form and
//! address checks; every other database failure → [`ErrorKind::Internal`], with the details
//! only in `source`.

use std::fmt;

/// What kind of failure, independent of how it is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request itself is wrong.
    BadRequest,
    /// Not allowed for this user.
    Forbidden,
    /// No such thing (or not visible to this user).
    NotFound,
    /// The state changed underneath: the move is not allowed now.
    Conflict,
    /// Too many attempts.
    TooMany,
    /// A service we depend on (PayPal) answered badly.
    Upstream,
    /// A service we depend on (the database, PayPal) cannot be reached now.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// The message shown when the code gave none.
    pub fn default_message(self) -> &'static str {
        match self {
            ErrorKind::BadRequest => "The request could not be understood.",
            ErrorKind::Forbidden => "You are not allowed to do that.",
            ErrorKind::NotFound => "We could not find that page. The link may be wrong or the event may no longer be available.",
            ErrorKind::Conflict => "That changed while you were looking at it. Please try again.",
            ErrorKind::TooMany => "Too many attempts. Please wait a moment and try again.",
            ErrorKind::Unavailable => "The site is briefly unavailable. Please try again in a moment.",
            ErrorKind::Upstream | ErrorKind::Internal => "Something went wrong on our side. Please try again.",
        }
    }
}

/// A failure with a kind, a user-safe message and a logged-only cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    /// Shown to the user; never contains internal details.
    pub message: String,
    /// Logged, never shown.
    pub source: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            source: None,
        }
    }

    fn with_default(kind: ErrorKind, source: impl fmt::Display) -> Error {
        Error {
            kind,
            message: kind.default_message().into(),
            source: Some(source.to_string()),
        }
    }

    /// Attaches the underlying cause (logged, never shown).
    pub fn with_source(mut self, source: impl fmt::Display) -> Error {
        self.source = Some(source.to_string());
        self
    }

    pub fn not_found() -> Error {
        Error::new(ErrorKind::NotFound, ErrorKind::NotFound.default_message())
    }

    pub fn bad_request(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::BadRequest, message)
    }

    pub fn conflict(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Conflict, message)
    }

    pub fn unavailable(source: impl fmt::Display) -> Error {
        Error::with_default(ErrorKind::Unavailable, source)
    }

    pub fn internal(source: impl fmt::Display) -> Error {
        Error::with_default(ErrorKind::Internal, source)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<diesel::result::Error> for Error {
    fn from(e: diesel::result::Error) -> Error {
        use diesel::result::{DatabaseErrorKind, Error as E};
        match e {
            E::NotFound => Error::not_found(),
            E::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => Error::unavailable(info.message()),
            // statement_timeout or lock_timeout (see `pool::Timeouts`): busy, try again.
            E::DatabaseError(_, info)
                if info.message().starts_with("canceling statement due to") =>
            {
                Error::unavailable(info.message())
            }
            E::DatabaseError(_, info) if is_unstorable_text(info.message()) => {
                Error::bad_request(UNSTORABLE_TEXT).with_source(info.message())
            }
            other => Error::internal(other),
        }
    }
}

/// The message for text the database refused to store.
pub const UNSTORABLE_TEXT: &str =
    "Some of what was sent contains characters that cannot be stored (such as a NUL byte).";

/// True for PostgreSQL's refusal of a text value (SQLSTATE 22021
/// `character_not_in_repertoire`, 22P05 `untranslatable_character`): Diesel reports these
/// without their code, so they are known by the server's message (test
/// `hardening::nul_bytes_the_database_refuses_are_a_400`).
fn is_unstorable_text(message: &str) -> bool {
    message.starts_with("invalid byte sequence for encoding")
        || message.contains("has no equivalent in encoding")
        || message.starts_with("unsupported Unicode escape sequence")
}

impl From<diesel::r2d2::PoolError> for Error {
    fn from(e: diesel::r2d2::PoolError) -> Error {
        Error::unavailable(format!("no database connection: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_errors_map_to_kinds() {
        assert_eq!(
            Error::from(diesel::result::Error::NotFound).kind,
            ErrorKind::NotFound
        );
        let e = Error::from(diesel::result::Error::RollbackTransaction);
        assert_eq!(e.kind, ErrorKind::Internal);
        assert_eq!(e.message, ErrorKind::Internal.default_message());
        assert!(e.source.is_some());
    }

    #[test]
    fn text_the_database_cannot_store_is_a_bad_request() {
        use diesel::result::{DatabaseErrorKind, Error as E};
        let nul = E::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("invalid byte sequence for encoding \"UTF8\": 0x00".to_string()),
        );
        let e = Error::from(nul);
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert_eq!(e.message, UNSTORABLE_TEXT);
        let other = E::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("relation \"x\" does not exist".to_string()),
        );
        assert_eq!(Error::from(other).kind, ErrorKind::Internal);
    }
}
