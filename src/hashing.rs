//! The password-hashing pool: a fixed number of threads (one for the site), each owning one
//! reused argon2 work area ([`ticketing_core::passwords::Scratch`]), fed through a short
//! queue. A login waits here, not inside a database connection, so a burst of password
//! guesses costs at most `threads × 19 MiB` of memory and never starves the connection pool
//! or the async workers (`/healthz` stays fast: `scripts/abuse`). When the queue is full the
//! caller gets [`Busy`] at once instead of waiting (test `hashing::tests::a_full_queue_is_busy`).

use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use rocket::tokio::sync::oneshot;
use ticketing_core::passwords::Scratch;

/// Hashing threads of the site: one argon2 run at a time (19 MiB, kept). A run takes about
/// 30 ms in a release build, so one thread checks some 30 passwords a second, far more than
/// staff logins need; a second thread would only let an attacker hold another 19 MiB.
pub const THREADS: usize = 1;
/// Password checks that may wait for a thread; more are answered "busy" at once.
pub const QUEUE: usize = 32;

/// The pool is saturated: too many password checks are waiting already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

impl From<Busy> for crate::error::AppError {
    fn from(_: Busy) -> Self {
        crate::error::AppError::new(
            rocket::http::Status::ServiceUnavailable,
            "The site is busy checking passwords. Please try again in a moment.",
        )
    }
}

enum Job {
    Verify {
        password: String,
        phc: String,
        reply: oneshot::Sender<bool>,
    },
    Hash {
        password: String,
        reply: oneshot::Sender<String>,
    },
}

/// Handle to the hashing threads (cheap to clone; the threads end when the last handle goes).
#[derive(Clone)]
pub struct PasswordHasher {
    queue: SyncSender<Job>,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads with room for `queue` waiting jobs.
    pub fn start(threads: usize, queue: usize) -> PasswordHasher {
        let (tx, rx) = sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for n in 0..threads.max(1) {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    let mut scratch = Scratch::default();
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(Job::Verify {
                                password,
                                phc,
                                reply,
                            }) => {
                                let _ = reply.send(scratch.verify(&password, &phc));
                            }
                            Ok(Job::Hash { password, reply }) => {
                                let _ = reply.send(scratch.hash(&password));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .expect("start a password-hashing thread");
        }
        PasswordHasher { queue: tx }
    }

    fn submit(&self, job: Job) -> Result<(), Busy> {
        match self.queue.try_send(job) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => Err(Busy),
        }
    }

    /// Whether `password` matches the PHC string `phc`.
    pub async fn verify(&self, password: &str, phc: &str) -> Result<bool, Busy> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Verify {
            password: password.to_string(),
            phc: phc.to_string(),
            reply,
        })?;
        answer.await.map_err(|_| Busy)
    }

    /// A new PHC hash of `password`.
    pub async fn hash(&self, password: &str) -> Result<String, Busy> {
        let (reply, answer) = oneshot::channel();
        self.submit(Job::Hash {
            password: password.to_string(),
            reply,
        })?;
        answer.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rocket::async_test]
    async fn hashes_and_verifies_on_the_pool() {
        let pool = PasswordHasher::start(2, 8);
        let phc = pool.hash("a long password").await.unwrap();
        assert_eq!(pool.verify("a long password", &phc).await, Ok(true));
        assert_eq!(pool.verify("another one", &phc).await, Ok(false));
    }

    #[rocket::async_test]
    async fn a_full_queue_is_busy() {
        let pool = PasswordHasher::start(1, 1);
        let phc = ticketing_core::passwords::hash("pw");
        // One running, one queued, then the queue is full.
        let jobs: Vec<_> = (0..6)
            .map(|_| {
                let (pool, phc) = (pool.clone(), phc.clone());
                tokio::spawn(async move { pool.verify("pw", &phc).await })
            })
            .collect();
        let mut busy = 0;
        for job in jobs {
            if job.await.unwrap() == Err(Busy) {
                busy += 1;
            }
        }
        assert!(
            busy >= 1,
            "some of 6 parallel checks must be refused by a 1+1 pool"
        );
    }
}
