//! Database models: one file per model, each with plain methods and a block of database
//! methods (`find_*`, `insert`, ...). Insert structs (`New*`) are separate from query structs.

pub mod booking;
pub mod event;
pub mod legal;
pub mod media;
pub mod outbox;
pub mod payment;
pub mod refund;
pub mod ticket_type;
pub mod user;

pub use booking::{Attendee, Booking, BookingItem, BookingState, NewBooking};
pub use event::{Event, NewEvent, Visibility};
pub use legal::{LegalPage, Organiser, OrganiserChange, LEGAL_SLUGS};
pub use media::MediaImage;
pub use outbox::OutboxRow;
pub use payment::Payment;
pub use refund::Refund;
pub use ticket_type::{NewTicketType, TicketType};
pub use user::{NewUser, Role, User};
