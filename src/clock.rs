//! Time behind a trait, so reconnect back-off, timeouts and wall-clock stamps are tested with a
//! simulated clock instead of real waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time that can also sleep.
pub trait Clock: Send + Sync {
    /// Monotonic time since an arbitrary fixed origin.
    fn monotonic(&self) -> Duration;
    /// The wall clock (UTC).
    fn wall(&self) -> SystemTime;
    /// Waits `d` (or, for a simulated clock, advances time by `d`).
    fn sleep(&self, d: Duration);
}

/// The real clock.
#[derive(Debug)]
pub struct RealClock {
    origin: Instant,
}

impl Default for RealClock {
    fn default() -> Self {
        RealClock {
            origin: Instant::now(),
        }
    }
}

impl Clock for RealClock {
    fn monotonic(&self) -> Duration {
        self.origin.elapsed()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
    fn sleep(&self, d: Duration) {
        std::thread::sleep(d)
    }
}

/// A clock that only moves when told to (or when something sleeps on it).
#[derive(Debug)]
pub struct SimulatedClock {
    wall_origin: SystemTime,
    elapsed: Mutex<Duration>,
}

impl SimulatedClock {
    /// A simulated clock whose wall time starts at `wall_origin`.
    pub fn new(wall_origin: SystemTime) -> Self {
        SimulatedClock {
            wall_origin,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }
    /// Moves time forward by `d`.
    pub fn advance(&self, d: Duration) {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner()) += d;
    }
}

impl Clock for SimulatedClock {
    fn monotonic(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn wall(&self) -> SystemTime {
        self.wall_origin + self.monotonic()
    }
    fn sleep(&self, d: Duration) {
        self.advance(d)
    }
}

/// CPU time the calling thread has used so far (user + system), for per-stage cost figures.
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec we pass; the clock id is valid on Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thread_cpu_time_grows_with_work() {
        let t0 = thread_cpu_time();
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(thread_cpu_time() > t0);
    }

    #[test]
    fn simulated_clock_moves_only_when_asked() {
        let c = SimulatedClock::new(SystemTime::UNIX_EPOCH);
        assert_eq!(c.monotonic(), Duration::ZERO);
        c.sleep(Duration::from_millis(1500));
        assert_eq!(c.monotonic(), Duration::from_millis(1500));
        assert_eq!(
            c.wall(),
            SystemTime::UNIX_EPOCH + Duration::from_millis(1500)
        );
    }
}
