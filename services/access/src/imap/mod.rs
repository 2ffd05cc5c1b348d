//! The IMAP session driver: reads commands through `mc_imap::framing`, runs them against the
//! stores in the session's state (RFC 3501 section 3: not authenticated, authenticated,
//! selected, logout) and writes responses serialised by imap-codec.
//!
//! Each command has its handler in a file of this module; `dispatch` is the single table. A
//! handler answers with a tagged status; untagged data it queues itself. After each command
//! the selected mailbox is brought up to date (`sync`), except after FETCH, STORE and SEARCH
//! with sequence numbers, where RFC 3501 section 7.4.1 forbids EXPUNGE responses.

mod append;
mod auth;
mod copy;
mod fetch;
mod fetch_body;
mod general;
mod idle;
mod mailboxes;
mod search;
mod select;
mod store;

use crate::Ctx;
use crate::auth::Account;
use crate::listener::Client;
use imap_codec::imap_types::command::{Command, CommandBody};
use imap_codec::imap_types::core::Tag;
use imap_codec::imap_types::response::{Data, Response};
use imap_codec::{ResponseCodec, encode::Encoder};
use mc_imap::framing::{Framer, Input};
use mc_imap::view::{Update, View};
use mc_runtime::connection::{Connection, ReadError};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROTOCOL: &str = "imap";

/// The selected mailbox.
pub struct Selected {
    pub id: i64,
    pub name: String,
    pub read_only: bool,
    pub view: View,
}

pub enum State {
    NotAuthenticated,
    Authenticated(Account),
    Selected(Account, Selected),
    Logout,
}

impl State {
    fn label(&self) -> &'static str {
        match self {
            State::NotAuthenticated => "not_authenticated",
            State::Authenticated(_) => "authenticated",
            State::Selected(..) => "selected",
            State::Logout => "logout",
        }
    }

    pub fn account(&self) -> Option<&Account> {
        match self {
            State::Authenticated(account) | State::Selected(account, _) => Some(account),
            _ => None,
        }
    }
}

/// What a handler decided about the session.
pub enum Flow {
    Continue,
    Close,
}

pub struct Session {
    pub ctx: Arc<Ctx>,
    pub connection: Connection,
    pub framer: Framer,
    pub state: State,
    pub ip: IpAddr,
    pub tls: bool,
    /// CONDSTORE enabled (ENABLE, or a command that uses it: RFC 7162 section 3.1).
    pub condstore: bool,
    pub bad_commands: u32,
    pub auth_failures: u32,
    pub changes: tokio::sync::broadcast::Receiver<crate::notify::Notice>,
}

pub async fn run(ctx: Arc<Ctx>, client: Client) {
    let config = &ctx.config;
    let connection = Connection::new(
        client.stream,
        Duration::from_secs(config.login_timeout_secs),
        tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600),
        ctx.shutdown.clone(),
    );
    let mut session = Session {
        changes: ctx.changes.subscribe(),
        ctx: ctx.clone(),
        connection,
        framer: Framer::new(config.imap_limits()),
        state: State::NotAuthenticated,
        ip: client.ip,
        tls: client.tls,
        condstore: false,
        bad_commands: 0,
        auth_failures: 0,
    };
    ctx.metrics
        .transition(PROTOCOL, None, Some(session.state.label()));
    let greeting = format!(
        "* OK [CAPABILITY {}] {} IMAP4rev1 ready\r\n",
        session.capabilities(),
        ctx.config.hostname
    );
    session.queue(greeting.as_bytes());
    let label = session.main_loop().await;
    if session.ctx.shutdown.is_cancelled() && !matches!(session.state, State::Logout) {
        session.queue(b"* BYE Server shutting down, reconnect to another server\r\n");
    }
    session.connection.shutdown().await;
    ctx.metrics.transition(PROTOCOL, Some(label), None);
}

impl Session {
    /// Reads and runs commands until the session ends; returns its last state label.
    async fn main_loop(&mut self) -> &'static str {
        loop {
            let label = self.state.label();
            let input = self.framer.next_input();
            let flow = match input {
                Input::Command(command) => self.command(*command).await,
                Input::Continue => {
                    self.queue(b"+ Ready for literal data\r\n");
                    Flow::Continue
                }
                Input::Refused { tag, too_big, text } => self.refused(tag, too_big, text),
                Input::Close { text } => {
                    self.queue(format!("* BYE {text}\r\n").as_bytes());
                    Flow::Close
                }
                Input::NeedMore => match self.read().await {
                    Ok(()) => Flow::Continue,
                    Err(error) => {
                        if matches!(error, ReadError::Idle) {
                            self.queue(b"* BYE Autologout; idle for too long\r\n");
                        }
                        Flow::Close
                    }
                },
            };
            let now = self.state.label();
            if now != label {
                self.ctx
                    .metrics
                    .transition(PROTOCOL, Some(label), Some(now));
            }
            if matches!(flow, Flow::Close) || matches!(self.state, State::Logout) {
                return now;
            }
        }
    }

    /// Reads more input into the framer (flushing output first).
    pub async fn read(&mut self) -> Result<(), ReadError> {
        self.connection.fill().await?;
        let buffered = self.connection.buffered().to_vec();
        self.connection.consume(buffered.len());
        self.framer.enqueue(&buffered);
        Ok(())
    }

    fn count_sent(&self, bytes: usize) {
        if bytes > 0 {
            self.ctx
                .metrics
                .sent_bytes
                .get_or_create(&crate::metrics::ProtocolLabels { protocol: PROTOCOL })
                .inc_by(bytes as u64);
        }
    }

    fn refused(&mut self, tag: Option<Tag<'static>>, too_big: bool, text: &str) -> Flow {
        match (tag, too_big) {
            (Some(tag), true) => self.tagged_no(&tag, Some("TOOBIG"), text),
            (Some(tag), false) => self.tagged_bad(&tag, text),
            (None, _) => self.queue(format!("* BAD {text}\r\n").as_bytes()),
        }
        self.bad_command()
    }

    /// Counts a refused command; too many end the session.
    fn bad_command(&mut self) -> Flow {
        self.bad_commands += 1;
        if self.bad_commands >= self.ctx.config.max_bad_commands {
            self.queue(b"* BYE Too many invalid commands\r\n");
            return Flow::Close;
        }
        Flow::Continue
    }

    async fn command(&mut self, command: Command<'static>) -> Flow {
        let started = Instant::now();
        let name = command.body.name();
        let flow = self.dispatch(command).await;
        self.ctx
            .metrics
            .command(PROTOCOL, name, started.elapsed().as_secs_f64());
        flow
    }

    /// The single command table: each state allows its commands (RFC 3501 section 6).
    async fn dispatch(&mut self, command: Command<'static>) -> Flow {
        let Command { tag, body } = command;
        let authenticated = self.state.account().is_some();
        let selected = matches!(self.state, State::Selected(..));
        match body {
            CommandBody::Capability => general::capability(self, &tag),
            CommandBody::Noop | CommandBody::Check => general::noop(self, &tag).await,
            CommandBody::Logout => general::logout(self, &tag),
            CommandBody::Id { .. } => general::id(self, &tag),
            CommandBody::StartTLS if !authenticated => auth::starttls(self, &tag).await,
            CommandBody::Login { username, password } if !authenticated => {
                auth::login(self, &tag, username, password).await
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } if !authenticated => {
                auth::authenticate(self, &tag, mechanism, initial_response).await
            }
            CommandBody::Enable { capabilities } if authenticated => {
                general::enable(self, &tag, capabilities)
            }
            CommandBody::Namespace if authenticated => general::namespace(self, &tag),
            CommandBody::Select {
                mailbox,
                parameters,
            } if authenticated => select::select(self, &tag, mailbox, parameters, false).await,
            CommandBody::Examine {
                mailbox,
                parameters,
            } if authenticated => select::select(self, &tag, mailbox, parameters, true).await,
            CommandBody::Create { mailbox } if authenticated => {
                mailboxes::create(self, &tag, mailbox).await
            }
            CommandBody::Delete { mailbox } if authenticated => {
                mailboxes::delete(self, &tag, mailbox).await
            }
            CommandBody::Rename { from, to } if authenticated => {
                mailboxes::rename(self, &tag, from, to).await
            }
            CommandBody::Subscribe { mailbox } if authenticated => {
                mailboxes::subscribe(self, &tag, mailbox, true).await
            }
            CommandBody::Unsubscribe { mailbox } if authenticated => {
                mailboxes::subscribe(self, &tag, mailbox, false).await
            }
            CommandBody::List {
                reference,
                mailbox_wildcard,
            } if authenticated => {
                mailboxes::list(self, &tag, reference, mailbox_wildcard, false).await
            }
            CommandBody::Lsub {
                reference,
                mailbox_wildcard,
            } if authenticated => {
                mailboxes::list(self, &tag, reference, mailbox_wildcard, true).await
            }
            CommandBody::Status {
                mailbox,
                item_names,
            } if authenticated => mailboxes::status(self, &tag, mailbox, &item_names).await,
            CommandBody::Append {
                mailbox,
                flags,
                date,
                message,
            } if authenticated => append::append(self, &tag, mailbox, flags, date, message).await,
            CommandBody::GetQuotaRoot { mailbox } if authenticated => {
                general::quota_root(self, &tag, mailbox).await
            }
            CommandBody::GetQuota { root } if authenticated => {
                general::quota(self, &tag, root).await
            }
            CommandBody::Idle if authenticated => idle::idle(self, &tag).await,
            CommandBody::Close if selected => select::close(self, &tag, true).await,
            CommandBody::Unselect if selected => select::close(self, &tag, false).await,
            CommandBody::Expunge if selected => store::expunge(self, &tag, None).await,
            CommandBody::ExpungeUid { sequence_set } if selected => {
                store::expunge(self, &tag, Some(sequence_set)).await
            }
            CommandBody::Fetch {
                sequence_set,
                macro_or_item_names,
                uid,
                modifiers,
            } if selected => {
                fetch::fetch(
                    self,
                    &tag,
                    sequence_set,
                    macro_or_item_names,
                    uid,
                    modifiers,
                )
                .await
            }
            CommandBody::Store {
                sequence_set,
                kind,
                response,
                flags,
                uid,
                modifiers,
            } if selected => {
                store::store(
                    self,
                    &tag,
                    sequence_set,
                    kind,
                    response,
                    flags,
                    uid,
                    modifiers,
                )
                .await
            }
            CommandBody::Search {
                charset,
                criteria,
                uid,
            } if selected => search::search(self, &tag, charset, criteria, uid).await,
            CommandBody::Sort {
                sort_criteria,
                charset,
                search_criteria,
                uid,
            } if selected => {
                search::sort(self, &tag, sort_criteria, charset, search_criteria, uid).await
            }
            CommandBody::Copy {
                sequence_set,
                mailbox,
                uid,
            } if selected => copy::copy(self, &tag, sequence_set, mailbox, uid, false).await,
            CommandBody::Move {
                sequence_set,
                mailbox,
                uid,
            } if selected => copy::copy(self, &tag, sequence_set, mailbox, uid, true).await,
            _ => {
                let text = if !authenticated {
                    "Command not valid before login (or not supported)"
                } else if !selected {
                    "Command not valid in this state: no mailbox selected"
                } else {
                    "Command not supported or not valid in this state"
                };
                self.tagged_bad(&tag, text);
                self.bad_command()
            }
        }
    }

    /// CAPABILITY list for the current state.
    pub fn capabilities(&self) -> String {
        let mut caps = vec!["IMAP4rev1", "LITERAL+", "SASL-IR", "ID", "ENABLE", "IDLE"];
        let authenticated = self.state.account().is_some();
        if !authenticated {
            if !self.tls && self.ctx.tls.is_some() {
                caps.push("STARTTLS");
            }
            if self.tls || self.ctx.config.plaintext_auth_allowed(self.ip) {
                caps.push("AUTH=PLAIN");
            } else {
                caps.push("LOGINDISABLED");
            }
        } else {
            caps.extend([
                "NAMESPACE",
                "UIDPLUS",
                "MOVE",
                "UNSELECT",
                "CHILDREN",
                "SPECIAL-USE",
                "QUOTA",
                "CONDSTORE",
                "SORT",
            ]);
        }
        caps.join(" ")
    }

    /// Queues bytes for the client (counted as sent here: everything sent goes through this).
    pub fn queue(&mut self, bytes: &[u8]) {
        self.count_sent(bytes.len());
        self.connection.queue(bytes);
    }

    /// Queues a response serialised by imap-codec (literals included inline: a server never
    /// waits for continuation).
    pub fn send(&mut self, response: &Response<'_>) {
        let bytes = ResponseCodec::default().encode(response).dump();
        self.queue(&bytes);
    }

    pub fn send_data(&mut self, data: Data<'_>) {
        self.send(&Response::Data(data));
    }

    /// `tag OK [code] text`. Codes are response codes written by us (`READ-WRITE`,
    /// `APPENDUID 5 3`); tags come validated from the parser; texts are fixed strings.
    pub fn tagged_ok(&mut self, tag: &Tag<'_>, code: Option<&str>, text: &str) {
        self.tagged(tag, "OK", code, text);
    }

    pub fn tagged_no(&mut self, tag: &Tag<'_>, code: Option<&str>, text: &str) {
        self.tagged(tag, "NO", code, text);
    }

    pub fn tagged_bad(&mut self, tag: &Tag<'_>, text: &str) {
        self.tagged(tag, "BAD", None, text);
    }

    fn tagged(&mut self, tag: &Tag<'_>, kind: &str, code: Option<&str>, text: &str) {
        let line = match code {
            Some(code) => format!("{} {kind} [{code}] {text}\r\n", tag.as_ref()),
            None => format!("{} {kind} {text}\r\n", tag.as_ref()),
        };
        self.queue(line.as_bytes());
    }

    /// Answers a store failure: the client sees a generic NO, the log gets the detail.
    pub fn internal_error(&mut self, tag: &Tag<'_>, error: &dyn std::fmt::Display) -> Flow {
        tracing::warn!(%error, "IMAP command failed");
        self.tagged_no(tag, Some("SERVERBUG"), "Internal error, try again later");
        Flow::Continue
    }

    /// Brings the selected mailbox up to date and queues the untagged responses.
    pub async fn sync(&mut self) -> Result<(), mc_mailstore::StoreError> {
        let State::Selected(_, selected) = &mut self.state else {
            return Ok(());
        };
        let since = selected.view.highest_modseq as i64;
        let changes = self.ctx.mailstore.changes_since(selected.id, since).await?;
        if changes.highest_modseq <= since {
            return Ok(());
        }
        let changed = changes
            .changed
            .iter()
            .map(|row| select::entry(row.uid, &row.flags, row.modseq))
            .collect();
        let expunged: Vec<u32> = changes.expunged.iter().map(|uid| *uid as u32).collect();
        let uid_next = selected.view.uid_next;
        let updates =
            selected
                .view
                .apply(changes.highest_modseq as u64, changed, &expunged, uid_next);
        let condstore = self.condstore;
        for update in updates {
            self.queue_update(update, condstore);
        }
        Ok(())
    }

    pub fn queue_update(&mut self, update: Update, condstore: bool) {
        match update {
            Update::Expunge(seq) => self.queue(format!("* {seq} EXPUNGE\r\n").as_bytes()),
            Update::Exists(count) => self.queue(format!("* {count} EXISTS\r\n").as_bytes()),
            Update::Flags { seq, entry } => {
                let line = fetch::flags_line(seq, &entry, condstore);
                self.queue(line.as_bytes());
            }
        }
    }
}
