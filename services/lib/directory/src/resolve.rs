//! Recipient resolution: from an address to the accounts and external addresses that receive it.
//!
//! Follows domain aliases, plus addressing, aliases, distribution lists, catch-all addresses and
//! account forwarding (with or without a copy kept), recursively. Guards, as the reference server has them: a cycle or a chain deeper than
//! [`MAX_RESOLUTION_DEPTH`] is a configuration error ("Too many recursive forwards"), and so is an
//! alias or catch-all that leads to a local address that does not exist. A disabled object stops
//! its branch with its own reason. List members that fail are skipped (and reported) so that one
//! bad member does not bounce the whole list; a cycle anywhere fails the whole resolution.

use crate::Directory;
use crate::error::{DirectoryError, parse_address};
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

/// Deepest chain of alias, list and catch-all hops followed.
pub const MAX_RESOLUTION_DEPTH: usize = 10;
/// Most final targets one address may expand to (bounds the fan-out of one RCPT).
pub const MAX_RESOLVED_TARGETS: usize = 10_000;

type BoxedFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why an address cannot receive mail. `Display` gives the reference server's reply text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("Unknown user")]
    UnknownUser,
    #[error("Account is not active")]
    AccountDisabled,
    #[error("Alias is not active")]
    AliasDisabled,
    #[error("Distribution list not active")]
    ListDisabled,
    #[error("Domain has been disabled")]
    DomainDisabled,
    #[error("Mail server configuration error. Too many recursive forwards")]
    TooManyRecursiveForwards,
}

/// A final recipient.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A local account (its address in lookup form).
    Account(String),
    /// An address not hosted here, spelt as configured: relayed.
    External(String),
}

/// The outcome for one recipient address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The address's domain is not hosted here (neither a domain nor a domain alias).
    NotHosted,
    /// Hosted, and these targets receive it (at least one).
    Deliver {
        targets: Vec<Target>,
        /// List members that were skipped, with the reason.
        skipped: Vec<(String, Rejection)>,
    },
    /// Hosted, and refused.
    Rejected(Rejection),
}

enum Object {
    Account {
        active: bool,
        /// Where the account forwards its mail, if forwarding is on.
        forward: Option<String>,
        keep_copy: bool,
    },
    Alias {
        active: bool,
        target: String,
    },
    List {
        active: bool,
        id: i64,
    },
}

struct Walk {
    path: Vec<String>,
    seen: HashSet<String>,
    targets: Vec<Target>,
    unique_targets: HashSet<Target>,
    skipped: Vec<(String, Rejection)>,
}

enum Failure {
    Rejected(Rejection),
    /// A cycle, or a chain past the depth or fan-out limit: fails the whole resolution, even
    /// from inside a list.
    Loop,
    /// The address asked about is not hosted here (only at the top level: hops to other hosts
    /// are external targets).
    NotHosted,
    Store(DirectoryError),
}

impl From<DirectoryError> for Failure {
    fn from(e: DirectoryError) -> Self {
        Self::Store(e)
    }
}

impl Directory {
    /// Resolves one recipient address.
    pub async fn resolve(&self, address: &str) -> Result<Resolved, DirectoryError> {
        mc_runtime::store_metrics::db(
            mc_runtime::store_metrics::DbOp::DirectoryLookup,
            async move {
                let address = parse_address(address)?;
                let mut walk = Walk {
                    path: Vec::new(),
                    seen: HashSet::new(),
                    targets: Vec::new(),
                    unique_targets: HashSet::new(),
                    skipped: Vec::new(),
                };
                match self.expand(address.to_string(), &mut walk).await {
                    Ok(()) if walk.targets.is_empty() => {
                        // A list whose every member was skipped delivers nowhere.
                        let reason = walk
                            .skipped
                            .first()
                            .map(|(_, r)| *r)
                            .unwrap_or(Rejection::UnknownUser);
                        Ok(Resolved::Rejected(reason))
                    }
                    Ok(()) => Ok(Resolved::Deliver {
                        targets: walk.targets,
                        skipped: walk.skipped,
                    }),
                    Err(Failure::Rejected(rejection)) => Ok(Resolved::Rejected(rejection)),
                    Err(Failure::Loop) => {
                        Ok(Resolved::Rejected(Rejection::TooManyRecursiveForwards))
                    }
                    Err(Failure::NotHosted) => Ok(Resolved::NotHosted),
                    Err(Failure::Store(error)) => Err(error),
                }
            },
        )
        .await
    }

    fn expand<'a>(
        &'a self,
        text: String,
        walk: &'a mut Walk,
    ) -> BoxedFuture<'a, Result<(), Failure>> {
        Box::pin(async move {
            let address = parse_address(&text)?;
            // Loops and duplicates are found on the case-folded form; an external address is
            // passed on as written, since another host's local parts may be case-sensitive.
            let key = address.lookup_key();
            if walk.path.contains(&key) || walk.path.len() > MAX_RESOLUTION_DEPTH {
                return Err(Failure::Loop);
            }
            if !walk.seen.insert(key.clone()) {
                return Ok(());
            }
            let Some(domain) = self.hosted_domain(address.domain().as_str()).await? else {
                if walk.path.is_empty() {
                    return Err(Failure::NotHosted);
                }
                return push(walk, Target::External(address.to_string()));
            };
            if !domain.active {
                return Err(Failure::Rejected(Rejection::DomainDisabled));
            }
            let local = address.local_part().to_lowercase();
            let mut canonical = format!("{local}@{}", domain.name);
            let mut object = self.object(&canonical).await?;
            if object.is_none()
                && domain.plus_addressing
                && let Some((base, _detail)) = local.split_once(domain.plus_separator.as_str())
                && !base.is_empty()
            {
                canonical = format!("{base}@{}", domain.name);
                object = self.object(&canonical).await?;
            }
            walk.path.push(key);
            let result = match object {
                Some(Object::Account { active: false, .. }) => {
                    Err(Failure::Rejected(Rejection::AccountDisabled))
                }
                Some(Object::Account {
                    active: true,
                    forward: None,
                    ..
                }) => push(walk, Target::Account(canonical)),
                Some(Object::Account {
                    active: true,
                    forward: Some(forward),
                    keep_copy,
                }) => self.forward(canonical, forward, keep_copy, walk).await,
                Some(Object::Alias { active: false, .. }) => {
                    Err(Failure::Rejected(Rejection::AliasDisabled))
                }
                Some(Object::Alias {
                    active: true,
                    target,
                }) => self.follow(target, walk).await,
                Some(Object::List { active: false, .. }) => {
                    Err(Failure::Rejected(Rejection::ListDisabled))
                }
                Some(Object::List { active: true, id }) => {
                    for member in self.list_members(id).await? {
                        match self.follow(member.clone(), walk).await {
                            Ok(()) => {}
                            Err(Failure::Rejected(reason)) => walk.skipped.push((member, reason)),
                            Err(fatal) => {
                                walk.path.pop();
                                return Err(fatal);
                            }
                        }
                    }
                    Ok(())
                }
                None => match &domain.catch_all {
                    Some(catch_all) if catch_all.to_lowercase() != canonical => {
                        self.follow(catch_all.clone(), walk).await
                    }
                    _ => Err(Failure::Rejected(Rejection::UnknownUser)),
                },
            };
            walk.path.pop();
            result
        })
    }

    /// Expands a hop (alias target, list member, catch-all). A local address that does not exist
    /// at the end of a hop is the reference's "too many recursive forwards", not "unknown user".
    async fn follow(&self, key: String, walk: &mut Walk) -> Result<(), Failure> {
        match self.expand(key, walk).await {
            Err(Failure::Rejected(Rejection::UnknownUser)) => {
                Err(Failure::Rejected(Rejection::TooManyRecursiveForwards))
            }
            other => other,
        }
    }

    /// An account that forwards: its own copy when it keeps one, and the forward target. A
    /// forward back to an address already reached ends there (A forwards to B, B to A: each gets
    /// one copy); a forward that fails costs the account's own copy only if it keeps none.
    async fn forward(
        &self,
        canonical: String,
        forward: String,
        keep_copy: bool,
        walk: &mut Walk,
    ) -> Result<(), Failure> {
        if keep_copy {
            push(walk, Target::Account(canonical.clone()))?;
        }
        let already = parse_address(&forward)
            .map(|address| walk.seen.contains(&address.lookup_key()))
            .unwrap_or(false);
        if already {
            return if keep_copy {
                Ok(())
            } else {
                // Nothing else receives it on this branch: the account keeps it after all.
                push(walk, Target::Account(canonical))
            };
        }
        match self.follow(forward.clone(), walk).await {
            Err(Failure::Rejected(reason)) if keep_copy => {
                walk.skipped.push((forward, reason));
                Ok(())
            }
            other => other,
        }
    }

    async fn object(&self, canonical: &str) -> Result<Option<Object>, DirectoryError> {
        let row: Option<(String, bool, Option<String>, i64, bool)> = sqlx::query_as(
            "SELECT 'account', active, CASE WHEN forward_enabled THEN forward_address END, id,
                    forward_keep_copy
               FROM accounts WHERE address = $1
             UNION ALL
             SELECT 'alias', active, target, id, true FROM aliases WHERE address = $1
             UNION ALL
             SELECT 'list', active, NULL::text, id, true FROM distribution_lists WHERE address = $1
             LIMIT 1",
        )
        .bind(canonical)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(
            |(kind, active, target, id, keep_copy)| match (kind.as_str(), target) {
                ("alias", Some(target)) => Object::Alias { active, target },
                ("list", _) => Object::List { active, id },
                (_, forward) => Object::Account {
                    active,
                    forward,
                    keep_copy,
                },
            },
        ))
    }
}

fn push(walk: &mut Walk, target: Target) -> Result<(), Failure> {
    if walk.targets.len() >= MAX_RESOLVED_TARGETS {
        return Err(Failure::Loop);
    }
    if walk.unique_targets.insert(target.clone()) {
        walk.targets.push(target);
    }
    Ok(())
}
