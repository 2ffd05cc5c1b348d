//! Mailbox change notices across replicas. Whoever commits a change to a mailbox (this service,
//! another replica, the delivery worker) publishes its id on `mailbox:changed`; each replica
//! follows that channel once and fans the ids out to its sessions, which then read what changed
//! from PostgreSQL. A notice only says "look now": a lost one costs latency (sessions also look
//! every `idle_poll_secs`), never correctness.

use crate::metrics::{Metrics, ReasonLabels};
use mc_runtime::stores::{Followed, RedisStore};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

/// Notices buffered per replica before slow sessions start missing them (they then look anyway).
const FAN_OUT_CAPACITY: usize = 4096;

pub const CHANNEL: &str = "mailbox:changed";

/// A mailbox id that changed; `None` means "notices may have been lost: look at everything".
pub type Notice = Option<i64>;

#[derive(Clone)]
pub struct Changes {
    sender: broadcast::Sender<Notice>,
    redis: Option<RedisStore>,
}

impl Changes {
    pub fn new(redis: Option<RedisStore>) -> Self {
        let (sender, _) = broadcast::channel(FAN_OUT_CAPACITY);
        Self { sender, redis }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.sender.subscribe()
    }

    /// Tells every session on every replica that `mailbox_id` changed (call after the commit).
    pub fn publish(&self, mailbox_id: i64) {
        let _ = self.sender.send(Some(mailbox_id));
        if let Some(redis) = &self.redis {
            redis.publish_hint(CHANNEL, mailbox_id.to_string());
        }
    }

    /// Follows the Redis channel until shutdown, resubscribing as needed.
    pub async fn follow(self, metrics: Metrics, shutdown: CancellationToken) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        let sender = self.sender.clone();
        redis
            .follow(CHANNEL, &shutdown, move |event| match event {
                Followed::Message(text) => {
                    metrics
                        .notifications
                        .get_or_create(&ReasonLabels { reason: "redis" })
                        .inc();
                    for id in text.split_ascii_whitespace() {
                        if let Ok(id) = id.parse::<i64>() {
                            let _ = sender.send(Some(id));
                        }
                    }
                }
                // (Re)subscribed: anything published meanwhile was missed.
                Followed::Live => {
                    let _ = sender.send(None);
                }
                Followed::Lost(reason) => {
                    tracing::warn!(%reason, "mailbox change notices lost; sessions poll meanwhile");
                }
            })
            .await;
    }
}
