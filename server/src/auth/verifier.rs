//! Checking presented keys without a database round trip on the hot path.
//!
//! A [`Verifier`] keeps the keys it has looked up, by SHA-256, for at most
//! [`VerifierConfig::ttl`]. A key that is not cached (or whose entry is
//! older than the TTL) costs one index lookup; every later request with it
//! within the TTL costs a hash and a map lookup. Revoked and expired keys
//! are cached too (neither state can be undone), so they do not cost a
//! lookup per request either; unknown keys are not, since a bootstrap may
//! store a key a client already presents.
//!
//! Revocation reaches every replica in two ways. The listener task LISTENs
//! on [`KEYS_CHANNEL`](super::KEYS_CHANNEL), which a trigger on `api_keys`
//! notifies (at commit) with the prefix of every key that is revoked or
//! changed, and evicts that key at once. When the listener's connection
//! fails it empties the cache (notifications may have been lost) and, once
//! listening again, empties it once more; in between, and if a notification
//! is lost for any other reason, an entry is re-read once it is older than
//! the TTL. A lookup that races with an eviction does not cache what it
//! read (a generation counter, bumped by every eviction, says whether one
//! happened meanwhile). So a revoked key stops working within the TTL (5 s
//! by default) at worst, and in practice as soon as the notification
//! arrives.
//!
//! `last_used_at` is written off the request path: a request with a key
//! whose last recorded use is older than
//! [`VerifierConfig::last_used_interval`] marks it, and the writer task
//! stores every marked key in one statement, which also skips a key that
//! another replica recorded within the interval. So each key's row is
//! written at most once per interval, never per request.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak},
    time::Duration,
};

use chrono::{DateTime, TimeDelta, Utc};
use crunch_queue::TenantId;
use sqlx::{PgPool, postgres::PgListener};
use tokio::sync::{Notify, watch};
use uuid::Uuid;

use super::{
    AuthError, KEYS_CHANNEL, Scopes,
    keys::{self, StoredKey},
};

/// How long the listener waits before it tries to connect again.
const RECONNECT: Duration = Duration::from_secs(1);

/// How a [`Verifier`] caches and records.
#[derive(Debug, Clone)]
pub struct VerifierConfig {
    /// How long a looked-up key is trusted without reading it again: the
    /// longest a revoked key can keep working on a replica that missed the
    /// revocation's notification.
    pub ttl: Duration,
    /// The least time between two writes of one key's `last_used_at`.
    pub last_used_interval: Duration,
    /// The most keys cached; past it, stale entries are dropped, then all.
    pub capacity: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            ttl: Duration::from_secs(5),
            last_used_interval: Duration::from_secs(60),
            capacity: 10_000,
        }
    }
}

/// A key that authenticated a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The tenant it acts for.
    pub tenant: TenantId,
    /// Its display prefix: what logs may name it by.
    pub prefix: String,
    /// What it may do.
    pub scopes: Scopes,
}

/// Verifies keys against a cache of looked-up keys (see the module docs).
/// Cheap to clone; the clones share the cache and the tasks, which end
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

struct Inner {
    pool: PgPool,
    config: VerifierConfig,
    cache: RwLock<Cache>,
    usage: Mutex<HashMap<Uuid, Usage>>,
    /// Wakes the writer task when a key's use is due to be recorded (an
    /// `Arc` of its own, so that the waiting task does not keep the
    /// verifier alive).
    record: Arc<Notify>,
    /// Whether the listener is LISTENing now.
    listening: watch::Sender<bool>,
    /// How many notifications the listener has acted on.
    notifications: watch::Sender<u64>,
    /// How many times the writer task has recorded uses.
    recorded: watch::Sender<u64>,
    /// Never sent: dropped with the last clone, which ends the tasks.
    stop: watch::Sender<()>,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<[u8; 32], Entry>,
    /// Bumped by every eviction; a lookup caches what it read only if no
    /// eviction happened while it read.
    generation: u64,
}

struct Entry {
    key: Arc<StoredKey>,
    fetched_at: DateTime<Utc>,
}

/// A key's recorded use. The map holds one per key used since the start,
/// which the number of keys bounds.
struct Usage {
    /// When its use was last marked for writing.
    marked_at: DateTime<Utc>,
    /// A use not written yet.
    pending: Option<DateTime<Utc>>,
}

impl Inner {
    /// A poisoned lock only means a panicking holder; the map is still
    /// consistent (single inserts and removals), so keep serving.
    fn read(&self) -> RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    fn usage(&self) -> MutexGuard<'_, HashMap<Uuid, Usage>> {
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fresh(&self, entry: &Entry, now: DateTime<Utc>) -> bool {
        let ttl = TimeDelta::from_std(self.config.ttl).unwrap_or(TimeDelta::MAX);
        // An entry from the future (a clock stepped back) is not trusted.
        entry.fetched_at <= now && now - entry.fetched_at < ttl
    }

    fn evict(&self, prefix: &str) {
        let mut cache = self.write();
        cache.keys.retain(|_, e| e.key.prefix != prefix);
        cache.generation += 1;
    }

    fn clear(&self) {
        let mut cache = self.write();
        cache.keys.clear();
        cache.generation += 1;
    }
}

impl Verifier {
    /// A verifier over `pool`, without its tasks: nothing evicts keys but
    /// the TTL, and `last_used_at` is written only by
    /// [`flush_last_used`](Self::flush_last_used). [`start`](Self::start)
    /// is what a server uses.
    pub fn new(pool: PgPool, config: VerifierConfig) -> Verifier {
        Verifier {
            inner: Arc::new(Inner {
                pool,
                config,
                cache: RwLock::new(Cache::default()),
                usage: Mutex::new(HashMap::new()),
                record: Arc::new(Notify::new()),
                listening: watch::Sender::new(false),
                notifications: watch::Sender::new(0),
                recorded: watch::Sender::new(0),
                stop: watch::Sender::new(()),
            }),
        }
    }

    /// A verifier over `pool` with its two tasks on the current Tokio
    /// runtime: the listener, which evicts keys as `crunch_keys` announces
    /// their changes, and the writer of `last_used_at`. Must be called
    /// inside a Tokio runtime.
    pub fn start(pool: PgPool, config: VerifierConfig) -> Verifier {
        let verifier = Verifier::new(pool, config);
        let weak = Arc::downgrade(&verifier.inner);
        tokio::spawn(listen(weak.clone(), verifier.inner.stop.subscribe()));
        tokio::spawn(record(
            weak,
            verifier.inner.record.clone(),
            verifier.inner.stop.subscribe(),
        ));
        verifier
    }

    /// The configuration.
    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// Verifies `secret`, now.
    pub async fn verify(&self, secret: &str) -> Result<Verified, AuthError> {
        self.verify_at(secret, Utc::now()).await
    }

    /// Verifies `secret` as of `now` (which decides expiry, the cache's
    /// TTL and `last_used_at`): the key it is, if it is a known key that
    /// is neither revoked nor expired. Looks the key up only when it is not
    /// cached.
    pub async fn verify_at(&self, secret: &str, now: DateTime<Utc>) -> Result<Verified, AuthError> {
        if !keys::is_well_formed(secret) {
            return Err(AuthError::MalformedKey);
        }
        let sha256 = keys::hash(secret);
        let key = self.cached(&sha256, now);
        let key = match key {
            Some(key) => key,
            None => self.look_up(&sha256, now).await?,
        };
        if key.revoked_at.is_some() {
            return Err(AuthError::RevokedKey {
                prefix: key.prefix.clone(),
            });
        }
        if let Some(expired_at) = key.expires_at.filter(|at| *at <= now) {
            return Err(AuthError::ExpiredKey {
                prefix: key.prefix.clone(),
                expired_at,
            });
        }
        self.used(key.id, now);
        Ok(Verified {
            tenant: key.tenant,
            prefix: key.prefix.clone(),
            scopes: key.scopes,
        })
    }

    fn cached(&self, sha256: &[u8; 32], now: DateTime<Utc>) -> Option<Arc<StoredKey>> {
        let cache = self.inner.read();
        cache
            .keys
            .get(sha256)
            .filter(|e| self.inner.fresh(e, now))
            .map(|e| e.key.clone())
    }

    async fn look_up(
        &self,
        sha256: &[u8; 32],
        now: DateTime<Utc>,
    ) -> Result<Arc<StoredKey>, AuthError> {
        let generation = self.inner.read().generation;
        let key = keys::by_hash(&self.inner.pool, sha256)
            .await?
            .ok_or(AuthError::UnknownKey)?;
        let key = Arc::new(key);
        let mut cache = self.inner.write();
        if cache.generation == generation {
            if cache.keys.len() >= self.inner.config.capacity {
                cache.keys.retain(|_, e| self.inner.fresh(e, now));
                if cache.keys.len() >= self.inner.config.capacity {
                    cache.keys.clear();
                }
            }
            cache.keys.insert(
                *sha256,
                Entry {
                    key: key.clone(),
                    fetched_at: now,
                },
            );
        }
        Ok(key)
    }

    /// Marks a use of key `id` at `now` for writing, when its last marked
    /// use is at least the interval older.
    fn used(&self, id: Uuid, now: DateTime<Utc>) {
        let interval =
            TimeDelta::from_std(self.inner.config.last_used_interval).unwrap_or(TimeDelta::MAX);
        let mut usage = self.inner.usage();
        let due = usage
            .get(&id)
            .is_none_or(|u| u.marked_at > now || now - u.marked_at >= interval);
        if due {
            usage.insert(
                id,
                Usage {
                    marked_at: now,
                    pending: Some(now),
                },
            );
            drop(usage);
            self.inner.record.notify_one();
        }
    }

    /// Writes the marked uses' `last_used_at`, in one statement; returns
    /// how many rows were written (a key another replica recorded within
    /// the interval is skipped). The writer task calls this whenever a use
    /// is marked. Uses that fail to be written are marked again.
    pub async fn flush_last_used(&self) -> Result<u64, AuthError> {
        let uses: Vec<(Uuid, DateTime<Utc>)> = self
            .inner
            .usage()
            .iter_mut()
            .filter_map(|(id, u)| u.pending.take().map(|at| (*id, at)))
            .collect();
        if uses.is_empty() {
            return Ok(0);
        }
        let written = keys::record_last_used(
            &self.inner.pool,
            &uses,
            self.inner.config.last_used_interval,
        )
        .await;
        if written.is_err() {
            let mut usage = self.inner.usage();
            for (id, at) in uses {
                if let Some(u) = usage.get_mut(&id) {
                    u.pending.get_or_insert(at);
                }
            }
        }
        written
    }

    /// Forgets the key with display prefix `prefix`, so that its next use
    /// reads it again. The listener does this for every notification.
    pub fn evict(&self, prefix: &str) {
        self.inner.evict(prefix);
    }

    /// Waits until the listener is LISTENing: from then on, a key changed
    /// in the database is evicted from this cache once the notification
    /// arrives.
    pub async fn listening(&self) {
        let mut listening = self.inner.listening.subscribe();
        let _ = listening.wait_for(|l| *l).await;
    }

    /// How many notifications the listener has acted on, to wait for one
    /// (`wait_for(|n| *n > before)`).
    pub fn notifications(&self) -> watch::Receiver<u64> {
        self.inner.notifications.subscribe()
    }

    /// How many times the writer task has recorded marked uses, to wait
    /// for the next (`wait_for(|n| *n > before)`).
    pub fn recorded(&self) -> watch::Receiver<u64> {
        self.inner.recorded.subscribe()
    }
}

/// The listener task: evicts the keys `crunch_keys` names, as long as a
/// clone of its verifier exists.
async fn listen(inner: Weak<Inner>, mut stop: watch::Receiver<()>) {
    loop {
        let Some(pool) = inner.upgrade().map(|i| i.pool.clone()) else {
            return;
        };
        let connected = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(KEYS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        }
        .await;
        drop(pool);
        let mut listener = match connected {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(
                    "cannot listen for key revocations ({e}); cached keys are re-read every few seconds"
                );
                if let Some(inner) = inner.upgrade() {
                    inner.clear();
                }
                tokio::select! {
                    _ = tokio::time::sleep(RECONNECT) => continue,
                    _ = stop.changed() => return,
                }
            }
        };
        // Whatever changed before the LISTEN took effect was not announced
        // to this listener: start from an empty cache.
        match inner.upgrade() {
            Some(inner) => {
                inner.clear();
                inner.listening.send_replace(true);
            }
            None => return,
        }
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => {
                        let Some(inner) = inner.upgrade() else { return };
                        inner.evict(notification.payload());
                        inner.notifications.send_modify(|n| *n += 1);
                    }
                    Ok(None) => {
                        tracing::warn!("the key revocation listener lost its connection; reconnecting");
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("the key revocation listener failed ({e}); reconnecting");
                        break;
                    }
                },
                _ = stop.changed() => return,
            }
        }
        match inner.upgrade() {
            Some(inner) => {
                inner.listening.send_replace(false);
                inner.clear();
            }
            None => return,
        }
    }
}

/// The writer task: records marked uses whenever some are marked, as long
/// as a clone of its verifier exists.
async fn record(inner: Weak<Inner>, marked: Arc<Notify>, mut stop: watch::Receiver<()>) {
    loop {
        tokio::select! {
            _ = marked.notified() => {}
            _ = stop.changed() => return,
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let verifier = Verifier { inner };
        match verifier.flush_last_used().await {
            Ok(_) => verifier.inner.recorded.send_modify(|n| *n += 1),
            Err(e) => tracing::warn!("recording when keys were last used failed: {e}"),
        }
    }
}
