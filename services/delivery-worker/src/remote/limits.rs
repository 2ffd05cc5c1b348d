//! Concurrent transactions per destination host, counted across every worker in Redis (the
//! reference has no such limit; Postfix's default is 20). A slot is a member of a sorted set
//! `<prefix>dest:<host>` scored by its expiry, so a worker that dies frees its slots when they
//! expire. Without Redis (or when it fails) there is no limit: a limit is a courtesy to remote
//! servers, never a reason to hold mail.

use mc_runtime::stores::RedisStore;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const ACQUIRE: &str = r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return 1
end
return 0
";

pub struct Limits {
    redis: Option<RedisStore>,
    limit: usize,
    hold: Duration,
    wait: Duration,
    script: redis::Script,
}

/// A held slot; give it back with [`Slot::release`] (else it expires).
pub struct Slot {
    redis: RedisStore,
    key: String,
    token: String,
}

/// No slot came free in time.
#[derive(Debug)]
pub struct Busy;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Limits {
    /// `limit` 0 means none. `hold` bounds how long a slot lasts if never released.
    pub fn new(redis: Option<RedisStore>, limit: usize, hold: Duration, wait: Duration) -> Self {
        Self {
            redis: if limit == 0 { None } else { redis },
            limit,
            hold,
            wait,
            script: redis::Script::new(ACQUIRE),
        }
    }

    /// Waits (up to the configured time) for a slot at `host`. `Ok(None)`: no limit applies.
    pub async fn acquire(&self, host: &str) -> Result<Option<Slot>, Busy> {
        let Some(redis) = &self.redis else {
            return Ok(None);
        };
        let key = redis.key(&format!("dest:{}", host.to_ascii_lowercase()));
        let token = uuid::Uuid::new_v4().to_string();
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let now = now_ms();
            let mut connection = redis.connection.clone();
            let granted: redis::RedisResult<i64> = mc_runtime::store_metrics::redis(
                mc_runtime::store_metrics::RedisGroup::DeliveryLimits,
                self.script
                    .key(&key)
                    .arg(now)
                    .arg(now + self.hold.as_millis() as u64)
                    .arg(self.limit)
                    .arg(&token)
                    .arg(self.hold.as_millis() as u64)
                    .invoke_async(&mut connection),
            )
            .await;
            match granted {
                Ok(1) => {
                    return Ok(Some(Slot {
                        redis: redis.clone(),
                        key,
                        token,
                    }));
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::debug!(%error, "destination limit not checked (Redis)");
                    return Ok(None);
                }
            }
            if started.elapsed() >= self.wait {
                return Err(Busy);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }
}

impl Slot {
    pub async fn release(self) {
        let mut connection = self.redis.connection.clone();
        let result: redis::RedisResult<i64> = mc_runtime::store_metrics::redis(
            mc_runtime::store_metrics::RedisGroup::DeliveryLimits,
            redis::cmd("ZREM")
                .arg(&self.key)
                .arg(&self.token)
                .query_async(&mut connection),
        )
        .await;
        if let Err(error) = result {
            tracing::debug!(%error, "destination slot not released (it expires)");
        }
    }
}
