//! Password hashing: argon2id PHC strings made and checked with bounded
//! memory.
//!
//! argon2 works in `m_cost` KiB of memory: 19 MiB per hash at OWASP's
//! parameters (m=19456 KiB, t=2, p=1, the argon2 crate's defaults, which
//! this module keeps). The crate's `PasswordHasher` / `PasswordVerifier`
//! allocate that memory afresh for every call. The first such block is
//! mmapped; freeing it raises glibc's dynamic mmap threshold (and its trim
//! threshold, to twice that), so every later block came from a malloc
//! arena's heap, where the small allocations of the requests in flight
//! settled into the freed blocks and kept them from being reused or
//! returned. command-api's RSS went from 13 MB to 358 MB after 64
//! concurrent wrong logins and stayed there (issue 18, item 8). Measured
//! here on 2 cores (never more than two hashes at once): 500 concurrent
//! wrong logins left 490 MiB; after 31 logins in small bursts `smaps`
//! showed eight arena heaps of 57 MiB each. Two bursts of 64 left 17 MiB
//! with `MALLOC_MMAP_THRESHOLD_` pinned, and 620 MiB with a single arena
//! (`MALLOC_ARENA_MAX=1`): fragmentation, not the number of threads
//! (docs/benchmarks.md).
//!
//! Here:
//! * a [`Gate`] lets at most one hash per core run at once, on the blocking
//!   pool, each in one of as many block buffers, allocated once and reused;
//! * at most [`QUEUE_PER_PERMIT`] requests per core wait for a turn, each at
//!   most [`MAX_WAIT`]; the others are refused at once with a 429
//!   `RATE_LIMITED` and `Retry-After` (see [`ApiError::rate_limited`]);
//! * the PHC strings are made ([`hash_into`]) and checked ([`verify_in`])
//!   here with `Argon2::hash_password_into_with_memory`, the crate's own
//!   parameter parsing and `password_hash::Output`'s constant-time
//!   comparison. Every argon2 PHC string the crate produces still verifies,
//!   whatever its variant, version, parameters and output length; one whose
//!   memory exceeds the buffers gets memory of its own for that call, up to
//!   [`MAX_M_COST_KIB`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use super::error::ApiError;

/// Requests that may wait for a turn, per permit (per core).
pub const QUEUE_PER_PERMIT: usize = 16;

/// The longest a request waits for a turn before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(5);

/// What a refused request is told to wait before it retries.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The most memory a stored hash may ask for (256 MiB). Ours ask for 19 MiB;
/// anything far above is not a hash this service wrote.
pub const MAX_M_COST_KIB: u32 = 256 * 1024;

/// The most passes a stored hash may ask for.
pub const MAX_T_COST: u32 = 16;

/// The most lanes a stored hash may ask for.
pub const MAX_P_COST: u32 = 16;

/// The blocks one hash at the default parameters works in (19456).
fn default_blocks() -> usize {
    Params::DEFAULT.block_count()
}

/// Why a stored hash could not be checked (not a wrong password: that is
/// `Ok(false)`), or a hash not made.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    // Without their `std` feature these errors are not `std::error::Error`s:
    // shown, not chained.
    #[error("argon2: {0}")]
    Argon2(argon2::Error),
    #[error("PHC string: {0}")]
    Phc(password_hash::Error),
    #[error("the PHC string has no salt or no hash")]
    Incomplete,
    #[error("the hash asks for more than this service allows: {0}")]
    TooCostly(String),
}

impl From<argon2::Error> for HashError {
    fn from(error: argon2::Error) -> Self {
        Self::Argon2(error)
    }
}

impl From<password_hash::Error> for HashError {
    fn from(error: password_hash::Error) -> Self {
        Self::Phc(error)
    }
}

/// A fresh argon2id PHC string of `password` (default parameters, a random
/// 16-byte salt), computed in `memory`.
pub fn hash_into(memory: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt_string = SaltString::encode_b64(&salt)?;
    let params = Params::DEFAULT;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    run(&argon2, &params, memory, password, &salt, &mut out)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt_string.as_salt()),
        hash: Some(Output::new(&out)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `stored`, computed in `memory`
/// (or, for a hash that needs more, in memory of its own).
pub fn verify_in(memory: &mut [Block], password: &[u8], stored: &str) -> Result<bool, HashError> {
    let hash = PasswordHash::new(stored)?;
    let algorithm = Algorithm::try_from(hash.algorithm)?;
    let version = hash
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&hash)?;
    if params.m_cost() > MAX_M_COST_KIB
        || params.t_cost() > MAX_T_COST
        || params.p_cost() > MAX_P_COST
    {
        return Err(HashError::TooCostly(hash.params.to_string()));
    }
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return Err(HashError::Incomplete);
    };
    let mut salt_bytes = [0u8; password_hash::Salt::MAX_LENGTH];
    let salt = salt.decode_b64(&mut salt_bytes)?;
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let argon2 = Argon2::new(algorithm, version, params.clone());
    run(&argon2, &params, memory, password, salt, out)?;
    // Output's equality is constant-time.
    Ok(Output::new(out)? == expected)
}

/// One argon2 computation: in `memory` when it is large enough, else in
/// memory of its own, freed at once.
fn run(
    argon2: &Argon2<'_>,
    params: &Params,
    memory: &mut [Block],
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    let blocks = params.block_count();
    match memory.get_mut(..blocks) {
        Some(memory) => argon2.hash_password_into_with_memory(password, salt, out, memory),
        None => argon2.hash_password_into(password, salt, out),
    }
}

/// Bounds argon2 work: `permits` hashes at once, each in a reused buffer;
/// `max_waiting` requests waiting for a turn, each at most `max_wait`.
#[derive(Debug)]
pub struct Gate {
    turns: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
    buffers: Arc<Buffers>,
}

/// The block buffers not in use: at most one per permit is ever allocated.
#[derive(Default)]
struct Buffers {
    free: Mutex<Vec<Vec<Block>>>,
    allocated: AtomicUsize,
}

impl std::fmt::Debug for Buffers {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Buffers")
            .field("allocated", &self.allocated.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Buffers {
    fn take(&self) -> Vec<Block> {
        let reused = self.free.lock().unwrap_or_else(|e| e.into_inner()).pop();
        reused.unwrap_or_else(|| {
            self.allocated.fetch_add(1, Ordering::Relaxed);
            vec![Block::default(); default_blocks()]
        })
    }

    fn give_back(&self, buffer: Vec<Block>) {
        self.free
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(buffer);
    }
}

/// A place among the waiting; given back when dropped.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    pub fn new(permits: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            turns: Arc::new(Semaphore::new(permits)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
            buffers: Arc::default(),
        }
    }

    /// Block buffers allocated so far (at most the permits).
    pub fn buffers_allocated(&self) -> usize {
        self.buffers.allocated.load(Ordering::Relaxed)
    }

    /// Runs `work` on the blocking pool with a turn and a block buffer of
    /// the default parameters' size; 429 when no turn comes in time or too
    /// many already wait.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let waiting = self.waiting.fetch_add(1, Ordering::AcqRel);
        let place = Waiting(&self.waiting);
        if waiting >= self.max_waiting {
            return Err(busy());
        }
        let turn = tokio::time::timeout(self.max_wait, self.turns.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|closed| ApiError::internal(&closed))?;
        drop(place);
        let buffers = self.buffers.clone();
        // The turn and the buffer go with the work: a request dropped while
        // it hashes (its client gone) does not free its turn early.
        tokio::task::spawn_blocking(move || {
            let mut buffer = buffers.take();
            let result = work(&mut buffer);
            buffers.give_back(buffer);
            drop(turn);
            result
        })
        .await
        .map_err(|error| ApiError::internal(&error))
    }
}

fn busy() -> ApiError {
    ApiError::rate_limited(
        "Too many password checks are in progress; retry later",
        RETRY_AFTER,
    )
}

/// The process's gate: one turn per core.
pub static GATE: LazyLock<Gate> = LazyLock::new(|| {
    let permits = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(2);
    Gate::new(permits, QUEUE_PER_PERMIT * permits, MAX_WAIT)
});

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Instant;

    use argon2::password_hash::{PasswordHasher, PasswordVerifier};
    use axum::http::StatusCode;

    use super::*;

    /// What the dev seed stores for `test123` (command-api's seed.rs).
    const DEV_MERCHANT_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$pCR+pLlwl33I5zDCklN35g$fUcegW0xPGQhJ+6UBm6pe1Tn8ObDVsE5xu7wn1u1OU8";

    fn buffer() -> Vec<Block> {
        vec![Block::default(); default_blocks()]
    }

    /// A buffer full of another computation's leftovers.
    fn dirty_buffer() -> Vec<Block> {
        let mut memory = buffer();
        for (i, block) in memory.iter_mut().enumerate() {
            block
                .as_mut()
                .fill(0x9e37_79b9_7f4a_7c15_u64.wrapping_mul(i as u64 + 1));
        }
        memory
    }

    /// Whether the argon2 crate's own verifier accepts `password` for `stored`.
    fn crate_accepts(password: &str, stored: &str) -> bool {
        Argon2::default()
            .verify_password(password.as_bytes(), &PasswordHash::new(stored).unwrap())
            .is_ok()
    }

    #[test]
    fn hashes_keep_owasp_parameters_and_round_trip() {
        let mut memory = dirty_buffer();
        let hash = hash_into(&mut memory, b"correct horse").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(Params::DEFAULT.m_cost(), 19456);
        assert_eq!(Params::DEFAULT.t_cost(), 2);
        assert_eq!(Params::DEFAULT.p_cost(), 1);
        assert!(verify_in(&mut memory, b"correct horse", &hash).unwrap());
        assert!(!verify_in(&mut memory, b"correct horsf", &hash).unwrap());
        assert!(!verify_in(&mut memory, b"", &hash).unwrap());
        // The crate's own verifier agrees, and salts are fresh.
        assert!(crate_accepts("correct horse", &hash));
        assert!(!crate_accepts("correct horsf", &hash));
        let again = hash_into(&mut memory, b"correct horse").unwrap();
        assert_ne!(hash, again);
        assert!(verify_in(&mut buffer(), b"correct horse", &again).unwrap());
    }

    #[test]
    fn existing_hashes_still_verify() {
        let mut memory = dirty_buffer();
        // The dev seed's.
        assert!(verify_in(&mut memory, b"test123", DEV_MERCHANT_HASH).unwrap());
        assert!(!verify_in(&mut memory, b"test124", DEV_MERCHANT_HASH).unwrap());
        // One the crate's `PasswordHasher` made.
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        let made = Argon2::default()
            .hash_password(b"hunter22", &salt)
            .unwrap()
            .to_string();
        assert!(verify_in(&mut memory, b"hunter22", &made).unwrap());
        assert!(!verify_in(&mut memory, b"hunter23", &made).unwrap());
    }

    #[test]
    fn the_dummy_hash_is_checked_like_a_real_one() {
        let dummy = super::super::session::DUMMY_PASSWORD_HASH;
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        let mut memory = buffer();
        for password in ["", "admin123", "test123"] {
            assert!(!verify_in(&mut memory, password.as_bytes(), dummy).unwrap());
            assert!(!crate_accepts(password, dummy));
        }
    }

    #[test]
    fn other_variants_versions_parameters_and_lengths_verify() {
        let cases = [
            (Algorithm::Argon2i, Version::V0x10, 8192, 3, 2, 64),
            (Algorithm::Argon2d, Version::V0x13, 4096, 1, 4, 16),
            (Algorithm::Argon2id, Version::V0x13, 19456, 2, 1, 32),
            // More memory than the buffers hold: memory of its own.
            (Algorithm::Argon2id, Version::V0x13, 40_000, 1, 1, 32),
        ];
        let mut memory = dirty_buffer();
        for (algorithm, version, m, t, p, len) in cases {
            let params = Params::new(m, t, p, Some(len)).unwrap();
            let salt = SaltString::generate(&mut rand::rngs::OsRng);
            let stored = Argon2::new(algorithm, version, params)
                .hash_password(b"s3cret", &salt)
                .unwrap()
                .to_string();
            assert!(
                verify_in(&mut memory, b"s3cret", &stored).unwrap(),
                "{stored}"
            );
            assert!(
                !verify_in(&mut memory, b"s3cre", &stored).unwrap(),
                "{stored}"
            );
        }
        assert_eq!(memory.len(), default_blocks());
    }

    #[test]
    fn absurd_or_broken_hashes_are_errors_not_work() {
        let mut memory = buffer();
        let tail = DEV_MERCHANT_HASH
            .rsplitn(3, '$')
            .take(2)
            .collect::<Vec<_>>();
        let (hash, salt) = (tail[0], tail[1]);
        for params in [
            "m=4194304,t=2,p=1",
            "m=19456,t=1000,p=1",
            "m=19456,t=2,p=64",
        ] {
            let stored = format!("$argon2id$v=19${params}${salt}${hash}");
            let started = Instant::now();
            let error = verify_in(&mut memory, b"test123", &stored).unwrap_err();
            assert!(matches!(error, HashError::TooCostly(_)), "{error}");
            assert!(started.elapsed() < Duration::from_millis(50));
        }
        for stored in [
            "",
            "not a hash",
            "$argon2id$v=19$m=19456,t=2,p=1",
            "$argon2id$v=19$m=19456,t=2,p=1$pCR+pLlwl33I5zDCklN35g",
            "$scrypt$ln=16,r=8,p=1$aM15713r3Xsvxbi31lqr1Q$nFNh2CVHVjNldFVKDHDlm4CbdRSCdEBsjjJxD+iCs5E",
            "$argon2id$v=7$m=19456,t=2,p=1$pCR+pLlwl33I5zDCklN35g$fUcegW0xPGQhJ+6UBm6pe1Tn8ObDVsE5xu7wn1u1OU8",
        ] {
            assert!(verify_in(&mut memory, b"test123", stored).is_err(), "{stored}");
        }
    }

    /// Runs `count` requests through `gate` at once, each working `work`
    /// long; returns their outcomes and the most that worked at once.
    async fn burst(
        gate: &Gate,
        count: usize,
        work: Duration,
    ) -> (Vec<Result<usize, ApiError>>, usize) {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let outcomes = futures::future::join_all((0..count).map(|_| {
            let (running, most) = (running.clone(), most.clone());
            gate.run(move |memory| {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(work);
                running.fetch_sub(1, Ordering::SeqCst);
                memory.len()
            })
        }))
        .await;
        (outcomes, most.load(Ordering::SeqCst))
    }

    #[track_caller]
    fn assert_rate_limited(error: &ApiError) {
        assert_eq!(error.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(error.code, "RATE_LIMITED");
        assert_eq!(error.retry_after, Some(RETRY_AFTER));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_gate_runs_one_per_permit_queues_a_few_and_refuses_the_rest() {
        let gate = Gate::new(1, 2, Duration::from_secs(10));
        let (outcomes, most) = burst(&gate, 6, Duration::from_millis(100)).await;
        assert_eq!(most, 1);
        // One runs, two wait their turn, three are refused at once.
        let served = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(served, 3, "{outcomes:?}");
        for outcome in &outcomes {
            match outcome {
                Ok(blocks) => assert_eq!(*blocks, default_blocks()),
                Err(error) => assert_rate_limited(error),
            }
        }
        assert_eq!(gate.buffers_allocated(), 1);
        // The queue is free again.
        let (outcomes, _) = burst(&gate, 3, Duration::from_millis(10)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert_eq!(gate.buffers_allocated(), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn buffers_are_reused_one_per_permit() {
        let gate = Gate::new(2, 64, Duration::from_secs(30));
        let (outcomes, most) = burst(&gate, 20, Duration::from_millis(5)).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        assert!(most <= 2, "{most} at once");
        assert!(
            gate.buffers_allocated() <= 2,
            "{}",
            gate.buffers_allocated()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_request_that_waits_too_long_is_refused() {
        let gate = Gate::new(1, 8, Duration::from_millis(100));
        let started = Instant::now();
        let (outcomes, _) = burst(&gate, 2, Duration::from_millis(600)).await;
        assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
        let refused = outcomes.iter().find_map(|outcome| outcome.as_ref().err());
        assert_rate_limited(refused.expect("one refused"));
        assert!(started.elapsed() >= Duration::from_millis(600));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_request_keeps_its_turn_until_its_work_ends() {
        let gate = Arc::new(Gate::new(1, 8, Duration::from_secs(10)));
        let first_done = Arc::new(AtomicBool::new(false));
        let first = tokio::spawn({
            let (gate, first_done) = (gate.clone(), first_done.clone());
            async move {
                gate.run(move |_| {
                    std::thread::sleep(Duration::from_millis(300));
                    first_done.store(true, Ordering::SeqCst);
                })
                .await
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        first.abort();
        let first_was_done = gate
            .run({
                let first_done = first_done.clone();
                move |_| first_done.load(Ordering::SeqCst)
            })
            .await
            .unwrap();
        assert!(
            first_was_done,
            "the second ran while the first still hashed"
        );
    }
}
