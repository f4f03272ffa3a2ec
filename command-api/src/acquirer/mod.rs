//! The simulated acquirer (being built: see the command API issue).
