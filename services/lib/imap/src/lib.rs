//! Sans-IO IMAP4rev1 server core for mailcluster's `access` service (RFC 3501 with IDLE, UIDPLUS,
//! MOVE, NAMESPACE, QUOTA, SPECIAL-USE, LITERAL+, ENABLE, ID, UNSELECT, CHILDREN, CONDSTORE).
//!
//! Commands are parsed and responses serialised by imap-codec; this crate adds what a server needs
//! around it: framing with bounded lines and literals, the per-message metadata stored at delivery
//! (ENVELOPE, BODYSTRUCTURE and the byte ranges of MIME parts, so the object store is read only for
//! body content), SEARCH evaluation and each session's view of its selected mailbox. It trusts
//! nothing that arrives from the network and never imports tokio, sqlx or redis.
#![forbid(unsafe_code)]

pub mod flags;
pub mod framing;
pub mod message;
pub mod search;
pub mod view;
