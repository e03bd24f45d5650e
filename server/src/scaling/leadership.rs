//! Which replica publishes: the holder of a session-level PostgreSQL
//! advisory lock, kept on a connection taken out of the pool.

use std::time::Duration;

use sqlx::{Connection, PgConnection, PgPool};

/// The advisory lock whose holder publishes ("crunch", then 1).
const PUBLISHER_LOCK: i64 = 0x6372_756e_6368_0001;

/// How long the lock holder's connection may take to answer a ping.
const LOCK_PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Being the one publisher: a session-level advisory lock held on a
/// connection of its own for as long as this replica runs. When the
/// replica or its connection dies, PostgreSQL drops the lock and another
/// replica takes over at its next round.
#[derive(Default)]
pub struct Leadership {
    conn: Option<PgConnection>,
}

impl Leadership {
    /// Whether this replica holds the lock now, taking it when free.
    pub async fn check(&mut self, pool: &PgPool) -> bool {
        if let Some(conn) = &mut self.conn {
            // A half-open connection would keep the lock (and this replica
            // silent) until TCP gives up; a ping that does not answer in
            // time hands the lock on instead.
            if matches!(
                tokio::time::timeout(LOCK_PING_TIMEOUT, conn.ping()).await,
                Ok(Ok(()))
            ) {
                return true;
            }
            tracing::warn!("lost the scaling publisher's lock connection");
            self.conn = None;
        }
        let mut conn = match pool.acquire().await {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!("cannot try the scaling publisher's lock: {e}");
                return false;
            }
        };
        // pg_try_advisory_lock is strict and its argument is never null, so
        // its result is never null either.
        match sqlx::query_scalar!(
            r#"SELECT pg_try_advisory_lock($1) AS "locked!""#,
            PUBLISHER_LOCK
        )
        .fetch_one(&mut *conn)
        .await
        {
            Ok(true) => {
                tracing::info!("this replica publishes the scaling metric");
                // The lock lives with this session: keep the connection out
                // of the pool for as long as this replica publishes.
                self.conn = Some(conn.detach());
                true
            }
            Ok(false) => false,
            Err(e) => {
                tracing::warn!("cannot try the scaling publisher's lock: {e}");
                false
            }
        }
    }

    /// Gives the lock up (by closing its connection).
    pub async fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            let _ = conn.close().await;
        }
    }
}
