//! The door: what a scanned or typed ticket code gets at check-in ([`decide`], pure: the
//! ticket's [`usability`](crate::bookings::usability), its waiver and whether it was used
//! already), and the per-event Ed25519 key that signs the QR codes so that a check-in
//! device can tell a forged code without the network.
//!
//! A QR payload is the ticket code, a dot and the base64url (no padding) Ed25519 signature
//! of the code: `7F3KQ9XM2D4A.<86 characters>`. The printed code stays as it is; a typed
//! code carries no signature and is looked up online (or in the downloaded list offline).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use ticketing_db::schema::door_keys;

use crate::bookings::Usability;

/// What an event does with an attendee whose required waiver is unsigned
/// (`events.door_waiver_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiverPolicy {
    /// The attendee signs on the staff device, then gets in.
    SignAtDoor,
    /// No entry until the waiver is signed (through its link).
    Refuse,
}

impl WaiverPolicy {
    pub fn parse(s: &str) -> Option<WaiverPolicy> {
        match s {
            "sign_at_door" => Some(WaiverPolicy::SignAtDoor),
            "refuse" => Some(WaiverPolicy::Refuse),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WaiverPolicy::SignAtDoor => "sign_at_door",
            WaiverPolicy::Refuse => "refuse",
        }
    }
}

/// The ticket's waiver as the door sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaiverState {
    /// The event needs no waiver.
    NotRequired,
    Signed,
    /// Required and not signed (or not even sent yet).
    Unsigned,
}

impl WaiverState {
    /// From the event's `waiver_required` and the waiver's `signed_at` (if it has a waiver).
    pub fn of(required: bool, signed: bool) -> WaiverState {
        match (required, signed) {
            (false, _) => WaiverState::NotRequired,
            (true, true) => WaiverState::Signed,
            (true, false) => WaiverState::Unsigned,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WaiverState::NotRequired => "not_required",
            WaiverState::Signed => "signed",
            WaiverState::Unsigned => "unsigned",
        }
    }
}

/// Why a ticket does not get in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefuseReason {
    /// No ticket has this code.
    Unknown,
    /// The QR code's signature is not the event's: a forged or altered code.
    Forged,
    /// Cancelled, refunded, unpaid or for another event (see [`Usability`]).
    Unusable(Usability),
}

/// What the door shows for a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoorResult {
    /// Green: in.
    Valid,
    /// Amber: the ticket is good but its required waiver is unsigned; `sign_at_door` says
    /// whether it may be signed on the staff device now (else entry is refused until signed).
    ValidWaiverUnsigned { sign_at_door: bool },
    /// The ticket was used already, at `at`.
    AlreadyCheckedIn { at: DateTime<Utc> },
    /// Red.
    Refused { reason: RefuseReason },
}

impl DoorResult {
    /// A machine-readable kind (the page's `data-result`, the offline list's mirror).
    pub fn kind(self) -> &'static str {
        match self {
            DoorResult::Valid => "valid",
            DoorResult::ValidWaiverUnsigned { .. } => "waiver_unsigned",
            DoorResult::AlreadyCheckedIn { .. } => "already",
            DoorResult::Refused {
                reason: RefuseReason::Unknown,
            } => "unknown",
            DoorResult::Refused {
                reason: RefuseReason::Forged,
            } => "forged",
            DoorResult::Refused {
                reason: RefuseReason::Unusable(u),
            } => u.kind(),
        }
    }

    /// The colour band: `green`, `amber` or `red` (the page adds an icon and words).
    pub fn tone(self) -> &'static str {
        match self {
            DoorResult::Valid => "green",
            DoorResult::ValidWaiverUnsigned { .. } => "amber",
            DoorResult::AlreadyCheckedIn { .. } | DoorResult::Refused { .. } => "red",
        }
    }

    /// Whether the ticket is checked in by this scan.
    pub fn admits(self) -> bool {
        self == DoorResult::Valid
    }

    /// What door staff read; `name` is the attendee's, `at` the check-in time as shown.
    pub fn message(self, name: &str, at: &str) -> String {
        match self {
            DoorResult::Valid => format!("Valid: {name} — welcome!"),
            DoorResult::ValidWaiverUnsigned { sign_at_door: true } => {
                format!("Valid — waiver not signed: {name} must sign the waiver before entry.")
            }
            DoorResult::ValidWaiverUnsigned {
                sign_at_door: false,
            } => format!("Entry refused until the waiver is signed: {name}."),
            DoorResult::AlreadyCheckedIn { .. } => {
                format!("Already checked in: {name} (at {at}).")
            }
            DoorResult::Refused {
                reason: RefuseReason::Unknown,
            } => "No ticket has this code.".into(),
            DoorResult::Refused {
                reason: RefuseReason::Forged,
            } => "Forged ticket: this QR code's signature is not the event's.".into(),
            DoorResult::Refused {
                reason: RefuseReason::Unusable(u),
            } => u.message(),
        }
    }
}

/// The door's decision for a known ticket: refused when not usable, then "already" when it
/// was checked in, then amber when its required waiver is unsigned, else valid. The check-in
/// page, the sync of offline scans and (mirrored in `static/checkin.js`) the offline device
/// all follow it.
pub fn decide(
    usability: Usability,
    waiver: WaiverState,
    policy: WaiverPolicy,
    checked_in_at: Option<DateTime<Utc>>,
) -> DoorResult {
    if usability != Usability::Usable {
        return DoorResult::Refused {
            reason: RefuseReason::Unusable(usability),
        };
    }
    if let Some(at) = checked_in_at {
        return DoorResult::AlreadyCheckedIn { at };
    }
    if waiver == WaiverState::Unsigned {
        return DoorResult::ValidWaiverUnsigned {
            sign_at_door: policy == WaiverPolicy::SignAtDoor,
        };
    }
    DoorResult::Valid
}

/// What was scanned or typed: the normalised code and, for a QR payload, its signature
/// (`None` for a typed code; `Some(None)` when a signature part is there but is not
/// base64url of 64 bytes, which is as forged as a wrong one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub code: String,
    pub signature: Option<Option<Vec<u8>>>,
}

/// Splits a scan into the code and its signature; the code is normalised as typed codes
/// are (`tokens::normalize_code`).
pub fn parse_scan(input: &str) -> Scan {
    let input = input.trim();
    match input.split_once('.') {
        Some((code, sig)) => Scan {
            code: ticketing_core::tokens::normalize_code(code),
            signature: Some(
                URL_SAFE_NO_PAD
                    .decode(sig.trim())
                    .ok()
                    .filter(|s| s.len() == 64),
            ),
        },
        None => Scan {
            code: ticketing_core::tokens::normalize_code(input),
            signature: None,
        },
    }
}

/// An event's QR signing key.
pub struct DoorKey {
    pair: Ed25519KeyPair,
}

impl DoorKey {
    /// The raw 32-byte public key, base64url: what devices verify with.
    pub fn public_b64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.pair.public_key().as_ref())
    }

    /// The QR payload of `code`: the code, a dot and its signature.
    pub fn payload(&self, code: &str) -> String {
        let sig = self.pair.sign(code.as_bytes());
        format!("{code}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// Whether `signature` is this key's over `code`.
    pub fn verifies(&self, code: &str, signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, self.pair.public_key().as_ref())
            .verify(code.as_bytes(), signature)
            .is_ok()
    }
}

/// The event's signing key, made (and stored) on first use. Safe when two requests race:
/// the first insert wins and both read it back.
pub fn key(conn: &mut PgConnection, event_id: i64) -> QueryResult<DoorKey> {
    let existing: Option<Vec<u8>> = door_keys::table
        .find(event_id)
        .select(door_keys::private_pkcs8)
        .first(conn)
        .optional()?;
    let pkcs8 = match existing {
        Some(p) => p,
        None => {
            let doc =
                Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(|_| {
                    diesel::result::Error::QueryBuilderError("no randomness for a key".into())
                })?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| {
                diesel::result::Error::QueryBuilderError("generated key unreadable".into())
            })?;
            diesel::insert_into(door_keys::table)
                .values((
                    door_keys::event_id.eq(event_id),
                    door_keys::private_pkcs8.eq(doc.as_ref()),
                    door_keys::public_key.eq(pair.public_key().as_ref()),
                ))
                .on_conflict(door_keys::event_id)
                .do_nothing()
                .execute(conn)?;
            door_keys::table
                .find(event_id)
                .select(door_keys::private_pkcs8)
                .first(conn)?
        }
    };
    let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(|_| {
        diesel::result::Error::DeserializationError("stored door key unreadable".into())
    })?;
    Ok(DoorKey { pair })
}

/// Signs the attendee's waiver on the staff device at the door: the typed name, consent,
/// the text's hash, the staff device's IP and user agent, and the marker that it was signed
/// at the door by `staff_user_id`. `Ok(false)` when it was already signed (nothing changes).
/// Call inside the transaction that also checks the ticket in and writes the audit entry.
pub fn sign_at_door(
    conn: &mut PgConnection,
    attendee_id: i64,
    sig: &crate::waivers::Signature<'_>,
    staff_user_id: i64,
) -> QueryResult<bool> {
    use ticketing_db::schema::waivers;
    let waiver = crate::waivers::ensure_waiver(conn, attendee_id)?;
    let n = diesel::update(
        waivers::table
            .find(waiver.id)
            .filter(waivers::signed_at.is_null()),
    )
    .set((
        waivers::waiver_text_id.eq(sig.text.id),
        waivers::signed_name.eq(sig.name),
        waivers::consent.eq(true),
        waivers::signed_at.eq(diesel::dsl::now),
        waivers::ip.eq(&sig.ip),
        waivers::user_agent.eq(sig.user_agent.chars().take(500).collect::<String>()),
        waivers::text_sha256.eq(ticketing_core::tokens::sha256_hex(&sig.text.body)),
        waivers::signed_at_door.eq(true),
        waivers::signed_by_user_id.eq(staff_user_id),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bookings::tickets::TicketState;
    use ticketing_db::models::BookingState;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2030-05-01T19:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_usable_ticket_with_nothing_missing_is_valid() {
        for w in [WaiverState::NotRequired, WaiverState::Signed] {
            for p in [WaiverPolicy::SignAtDoor, WaiverPolicy::Refuse] {
                let r = decide(Usability::Usable, w, p, None);
                assert_eq!(r, DoorResult::Valid);
                assert_eq!((r.kind(), r.tone()), ("valid", "green"));
                assert!(r.admits());
            }
        }
    }

    #[test]
    fn an_unsigned_required_waiver_is_amber_by_the_events_policy() {
        let sign = decide(
            Usability::Usable,
            WaiverState::Unsigned,
            WaiverPolicy::SignAtDoor,
            None,
        );
        assert_eq!(sign, DoorResult::ValidWaiverUnsigned { sign_at_door: true });
        assert_eq!((sign.kind(), sign.tone()), ("waiver_unsigned", "amber"));
        assert!(!sign.admits(), "not in before signing");
        assert!(sign.message("Ana", "").contains("waiver not signed"));
        let refuse = decide(
            Usability::Usable,
            WaiverState::Unsigned,
            WaiverPolicy::Refuse,
            None,
        );
        assert_eq!(
            refuse,
            DoorResult::ValidWaiverUnsigned {
                sign_at_door: false
            }
        );
        assert!(refuse.message("Ana", "").starts_with("Entry refused"));
    }

    #[test]
    fn a_used_ticket_says_when_even_with_an_unsigned_waiver() {
        let r = decide(
            Usability::Usable,
            WaiverState::Unsigned,
            WaiverPolicy::SignAtDoor,
            Some(at()),
        );
        assert_eq!(r, DoorResult::AlreadyCheckedIn { at: at() });
        assert_eq!((r.kind(), r.tone()), ("already", "red"));
        assert_eq!(
            r.message("Ana", "19:00"),
            "Already checked in: Ana (at 19:00)."
        );
    }

    #[test]
    fn an_unusable_ticket_is_refused_before_anything_else() {
        for u in [
            Usability::WrongEvent,
            Usability::TicketClosed(TicketState::Cancelled),
            Usability::TicketClosed(TicketState::Refunded),
            Usability::BookingNotValid(BookingState::Expired),
        ] {
            let r = decide(
                u,
                WaiverState::Unsigned,
                WaiverPolicy::SignAtDoor,
                Some(at()),
            );
            assert_eq!(
                r,
                DoorResult::Refused {
                    reason: RefuseReason::Unusable(u)
                }
            );
            assert_eq!((r.kind(), r.tone()), (u.kind(), "red"));
            assert!(!r.admits());
        }
    }

    #[test]
    fn scans_split_into_code_and_signature() {
        assert_eq!(
            parse_scan(" 7f3k-q9xm "),
            Scan {
                code: "7F3KQ9XM".into(),
                signature: None
            }
        );
        assert_eq!(parse_scan("ABC.not base64").signature, Some(None));
        assert_eq!(
            parse_scan("ABC.AAAA").signature,
            Some(None),
            "too short for a signature"
        );
    }

    #[test]
    fn a_signed_payload_verifies_and_an_altered_one_does_not() {
        let doc = Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).unwrap();
        let key = DoorKey {
            pair: Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap(),
        };
        let payload = key.payload("7F3KQ9XM2D4A");
        let scan = parse_scan(&payload);
        assert_eq!(scan.code, "7F3KQ9XM2D4A");
        let sig = scan.signature.unwrap().unwrap();
        assert!(key.verifies(&scan.code, &sig));
        assert!(!key.verifies("7F3KQ9XM2D4B", &sig), "another code");
        let mut bad = sig.clone();
        bad[0] ^= 1;
        assert!(!key.verifies(&scan.code, &bad), "an altered signature");
        assert_eq!(URL_SAFE_NO_PAD.decode(key.public_b64()).unwrap().len(), 32);
    }
}
