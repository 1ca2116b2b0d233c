//! Tests: simulator scenarios and per-state transition tests (style.md tiers 2 and 3).

mod api;
mod scenarios;
mod states;
mod util;
