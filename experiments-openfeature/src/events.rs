//! Provider status and events, read from the client's config store. The OpenFeature Rust SDK
//! 0.3 has no provider-event API, so [`ProviderEvents`] hands them to the application.

use experiments_sdk::watch::{ConfigStore, Health, StoreStatus, StoreVersion};
use open_feature::provider::ProviderStatus;
use tokio::sync::watch;

/// A change of the provider's state, as OpenFeature's provider events name them.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderEvent {
    /// `PROVIDER_READY`: a config is served and the latest check succeeded (the first load,
    /// or a recovery from [`ProviderEvent::Stale`] or [`ProviderEvent::Error`]).
    Ready,
    /// `PROVIDER_STALE`: a config is served but the latest check of the source failed, so it
    /// may be out of date. Evaluations go on with it.
    Stale,
    /// `PROVIDER_ERROR`: nothing is loaded and the source's latest check failed.
    Error {
        /// The source's failure, on one line.
        message: String,
    },
    /// `PROVIDER_CONFIGURATION_CHANGED`: a new config version is served.
    ConfigurationChanged {
        /// The store's version of it (1 for the first, then growing).
        version: u64,
    },
}

/// The provider's state, by the rule [`status_of`] applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    NotReady,
    Ready,
    Stale,
    Error,
}

fn state_of(status: &StoreStatus) -> State {
    match status.health {
        Health::Ready => State::Ready,
        Health::Stale => State::Stale,
        Health::Empty if status.consecutive_failures > 0 => State::Error,
        _ => State::NotReady,
    }
}

/// OpenFeature's status of a store: `Empty` → `NotReady` (or `Error` when the source's latest
/// check failed), `Ready` → `Ready`, `Stale` → `STALE`.
pub(crate) fn status_of(status: &StoreStatus) -> ProviderStatus {
    match state_of(status) {
        State::NotReady => ProviderStatus::NotReady,
        State::Ready => ProviderStatus::Ready,
        State::Stale => ProviderStatus::STALE,
        State::Error => ProviderStatus::Error,
    }
}

/// The provider's events from the moment it was made: one or two per change of the client's
/// config store ([`ProviderEvent::ConfigurationChanged`] for a new version, then the new
/// state when it changed). Made by
/// [`ExperimentsProvider::events`](crate::ExperimentsProvider::events); any number can
/// exist, each sees every change. Nothing runs in the background: [`ProviderEvents::recv`]
/// reads the store when it wakes (latest state only — changes in quick succession may fold
/// into one).
///
/// ```no_run
/// # async fn demo(provider: experiments_openfeature::ExperimentsProvider) {
/// use experiments_openfeature::ProviderEvent;
///
/// let mut events = provider.events();
/// tokio::spawn(async move {
///     loop {
///         match events.recv().await {
///             ProviderEvent::ConfigurationChanged { version } => println!("config v{version}"),
///             ProviderEvent::Stale => println!("config source failing; serving the last one"),
///             other => println!("{other:?}"),
///         }
///     }
/// });
/// # }
/// ```
#[derive(Debug)]
pub struct ProviderEvents {
    store: ConfigStore,
    rx: watch::Receiver<StoreVersion>,
    version: Option<u64>,
    state: State,
    pending: std::collections::VecDeque<ProviderEvent>,
}

impl ProviderEvents {
    pub(crate) fn new(store: &ConfigStore) -> Self {
        let mut rx = store.subscribe();
        rx.mark_unchanged();
        let status = store.status();
        ProviderEvents {
            store: store.clone(),
            rx,
            version: status.version,
            state: state_of(&status),
            pending: Default::default(),
        }
    }

    /// The next event. Waits for the store's next check while nothing changed; never ends
    /// (the events object keeps the store alive), so drop it to stop listening.
    pub async fn recv(&mut self) -> ProviderEvent {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return e;
            }
            if self.rx.changed().await.is_err() {
                // Cannot happen while `self.store` lives; wait for nothing rather than spin.
                std::future::pending::<()>().await;
            }
            self.poll_store();
        }
    }

    /// The events of changes already recorded by the store, without waiting.
    pub fn try_recv(&mut self) -> Option<ProviderEvent> {
        if self.pending.is_empty() && self.rx.has_changed().unwrap_or(false) {
            self.rx.mark_unchanged();
            self.poll_store();
        }
        self.pending.pop_front()
    }

    fn poll_store(&mut self) {
        let status = self.store.status();
        if let Some(v) = status.version.filter(|v| Some(*v) != self.version) {
            self.pending.push_back(ProviderEvent::ConfigurationChanged { version: v });
        }
        self.version = status.version;
        let state = state_of(&status);
        if state != self.state {
            match state {
                State::Ready => self.pending.push_back(ProviderEvent::Ready),
                State::Stale => self.pending.push_back(ProviderEvent::Stale),
                State::Error => self.pending.push_back(ProviderEvent::Error {
                    message: status.last_error.unwrap_or_default(),
                }),
                State::NotReady => {}
            }
            self.state = state;
        }
    }
}
