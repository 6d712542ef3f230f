//! `rampart serve` (and plain `rampart`): the game server. Loads config and
//! content, starts the session host and the HTTP API, and drains on SIGTERM
//! or SIGINT.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};

use std::sync::Arc;

use rampart_net::gateway::{Feed, Limits, NetConfig, NetHandle, feed_channel};
use rampart_net::tickets::TicketKey;

use crate::advertise::Advertise;
use crate::agones::{Agones, HttpSidecar};
use crate::auth::PlayerAuth;
use crate::config::{Config, ServeArgs};
use crate::content::Loaded;
use crate::host::HostHandle;
use crate::reload::Reloader;
use crate::stores::{Adopter, Stores};
use crate::{http, telemetry};

/// Runs the server until it is drained.
pub fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let config =
        Config::load(&args, &|key| std::env::var(key).ok()).context("invalid configuration")?;
    telemetry::init_logging(config.log_format)?;
    let metrics = telemetry::install_metrics().context("installing the Prometheus recorder")?;
    // Panics become log events; one in a session's tick names the session.
    std::panic::set_hook(Box::new(|panic| match crate::host::stepping() {
        Some(session) => tracing::error!(%session, %panic, "panic"),
        None => tracing::error!(%panic, "panic"),
    }));
    let loaded = Loaded::read_for_startup(&config.assets)?;
    tracing::info!(
        assets = %config.assets.display(),
        version = format_args!("{:016x}", loaded.content.version),
        maps = loaded.content.maps.len(),
        towers = loaded.content.towers.len(),
        "content loaded"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("rampart-io")
        .enable_all()
        .build()
        .context("starting the IO runtime")?;
    runtime.block_on(serve(config, loaded, metrics))
}

async fn serve(
    config: Config,
    loaded: Loaded,
    metrics: metrics_exporter_prometheus::PrometheusHandle,
) -> anyhow::Result<ExitCode> {
    let mut terminate = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    let key = match &config.net_key {
        Some(text) => TicketKey::from_base64(text).context("reading net_key")?,
        None => {
            tracing::warn!(
                "no net_key configured: using a random development key; connect tokens die with \
                 this process and no other instance can accept them (set RAMPART_NET_KEY)"
            );
            TicketKey::generate().context("generating a development net key")?
        }
    };
    let auth = PlayerAuth::from_config(&config).context("configuring player authentication")?;
    if auth.is_anonymous() {
        tracing::warn!(
            "ANONYMOUS DEV MODE: no auth_jwt_secret or auth_jwt_public_key configured, so \
             anyone may join as a new anonymous player; do not run a public server like this"
        );
    }
    if cfg!(any(target_arch = "x86", target_arch = "x86_64")) && !cfg!(poly1305_force_soft) {
        tracing::warn!(
            "built without --cfg poly1305_force_soft (.cargo/config.toml sets it; RUSTFLAGS in \
             the environment replaces that): sealing each UDP datagram costs about 3.5 times as \
             much CPU"
        );
    }
    let content_version = loaded.content.version;
    let map_keys: Vec<String> = loaded
        .content
        .maps
        .iter()
        .map(|map| map.key.clone())
        .collect();
    let stores = Stores::open(&config, &loaded).await?;
    rampart_persistence::describe_metrics();
    let (persister, persistence) =
        stores.start_persister(&config, &tokio::runtime::Handle::current());
    let persist_handle = persistence.handle.clone();
    let (feed, feed_queue) = feed_channel();
    let host = HostHandle::spawn(
        loaded.content,
        config.host_config(),
        Some(persistence),
        Some(feed.clone()),
    )
    .context("starting the session host")?;
    tracing::info!(instance = %stores.instance, "session owner name");
    // Under Agones, health pings start at once (they only need the tick
    // thread), and the GameServer says what clients dial before the
    // transports start.
    let agones = config.agones.then(|| {
        tracing::info!(
            sdk_port = config.agones_sdk_port,
            "Agones: talking to the SDK sidecar"
        );
        Agones::new(HttpSidecar::on_port(config.agones_sdk_port))
    });
    let _health = agones
        .as_ref()
        .map(|agones| agones.keep_healthy(host.clone()));
    let game_server = match &agones {
        Some(agones) => {
            let address = agones
                .address()
                .await
                .context("reading this game server's address from Agones")?;
            tracing::info!(host = %address.host, ports = ?address.ports, "Agones: GameServer address");
            Some(address)
        }
        None => None,
    };
    let advertise = Advertise::new(&config, game_server);
    // Sessions whose owner is gone resume before players are let in.
    let mut adopter = Adopter::new(stores.clone(), host.clone());
    let resumed = adopter.pass().await;
    if resumed > 0 {
        tracing::info!(sessions = resumed, "resumed orphaned sessions at startup");
    }
    if config.admin_token.is_none() {
        tracing::warn!("no admin token configured: POST and DELETE on /v1/sessions are disabled");
    }
    let ws_listener = std::net::TcpListener::bind(config.ws_addr).with_context(|| {
        format!(
            "binding the WebSocket listener to {} (is another server running?)",
            config.ws_addr
        )
    })?;
    let ws_base = advertise.ws_base(
        ws_listener
            .local_addr()
            .context("reading the WebSocket address")?,
    )?;
    let net_config = NetConfig {
        udp_addr: config.udp_addr,
        udp_sockets: config.udp_sockets,
        advertise: advertise.udp()?,
        udp_receive_buffer: config.udp_receive_buffer_bytes,
        snapshot_hz: config.snapshot_hz.min(config.tick_hz),
        tick_hz: config.tick_hz,
        limits: Limits {
            commands_per_second: f64::from(config.command_rate_per_second),
            command_burst: f64::from(config.command_burst),
            max_spectators: config.max_spectators,
            ..Limits::default()
        },
    };
    let net = Arc::new(
        NetHandle::start(
            net_config,
            Arc::new(key),
            Arc::new(host.clone()),
            feed_queue,
            Some(ws_listener),
        )
        .with_context(|| format!("starting the game transports on UDP {}", config.udp_addr))?,
    );
    tracing::info!(udp = ?net.udp_addresses(), ws = %ws_base, "game transports listening; clients dial these");
    let mut join =
        http::JoinService::new(net.clone(), auth, ws_base).with_players(stores.database.clone());
    if let Some(hot) = &stores.hot {
        join = join.with_fleet(hot.clone(), stores.instance.clone());
    }
    let listener = tokio::net::TcpListener::bind(config.http_addr)
        .await
        .with_context(|| {
            format!(
                "binding the HTTP API to {} (is another server running?)",
                config.http_addr
            )
        })?;
    let http_addr = listener.local_addr().context("reading the HTTP address")?;
    let http_base = advertise.http_base(http_addr)?;
    tracing::info!(%http_base, "other instances send this instance's players to");
    tokio::spawn(adopter.run(http_base));
    let reloader = Arc::new(Reloader::new(
        config.assets.clone(),
        host.clone(),
        stores.versions.clone(),
    ));
    let _watching = if config.watch_assets {
        let watching = reloader.watch().with_context(|| {
            format!(
                "watching {} for changes (watch_assets)",
                config.assets.display()
            )
        })?;
        Some(watching)
    } else {
        None
    };
    tracing::info!(%http_addr, tick_hz = config.tick_hz, max_sessions = config.max_sessions, "rampart serving: health, ready, metrics and API on http_addr");
    let router = http::router(
        http::AppState::new(host.clone(), metrics, &config)
            .with_join(join)
            .with_persistence(persist_handle, stores.hot.is_some())
            .with_records(stores.database.clone(), stores.hot.clone())
            .with_reload(reloader),
    );
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(http::serve(listener, router, async {
        let _ = http_stopped.await;
    }));
    if let Some(agones) = &agones {
        agones
            .ready(&crate::agones::labels(content_version, map_keys))
            .await
            .context("telling Agones this game server is ready")?;
        let _counters = agones.keep_counters(host.clone());
    }

    let which = tokio::select! {
        _ = terminate.recv() => "SIGTERM",
        _ = interrupt.recv() => "SIGINT",
    };
    let started = Instant::now();
    host.begin_drain();
    // Clients hear it before their sessions are handed over.
    let _ = feed.try_send(Feed::Draining);
    tracing::info!(
        signal = which,
        deadline_s = config.drain_seconds,
        "drain phase 1/3: not ready, refusing new sessions"
    );
    tokio::spawn(async move {
        tokio::select! {
            _ = terminate.recv() => {},
            _ = interrupt.recv() => {},
        }
        tracing::warn!("second signal: exiting at once without finishing the drain");
        std::process::exit(130);
    });

    let drained = tokio::time::timeout(config.drain_deadline(), host.drain()).await;
    let clean = match drained {
        Ok(Ok(report)) => {
            tracing::info!(
                sessions = report.sessions,
                handed_over = report.handed_over,
                failed = report.failed,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "drain phase 2/3: every session told and handed over"
            );
            report.failed == 0
        }
        Ok(Err(error)) => {
            tracing::error!(%error, "drain phase 2/3 failed");
            false
        }
        Err(_) => {
            tracing::error!(
                deadline_s = config.drain_seconds,
                "drain phase 2/3: deadline passed before every session was handed over"
            );
            false
        }
    };
    // What the sessions handed over is written before the process exits:
    // another instance adopts them from it.
    let remaining = config.drain_deadline().saturating_sub(started.elapsed());
    let persisted = persister.shutdown(remaining).await;
    let clean = clean && persisted.unwritten_sessions == 0;
    if persisted.unwritten_sessions > 0 {
        tracing::error!(
            sessions = persisted.unwritten_sessions,
            "drain: session state not written before the deadline"
        );
    } else {
        tracing::info!("drain: every session's state is stored");
    }
    // Every client gets its goodbye before the sockets close.
    let stopping = net.clone();
    let _ = tokio::task::spawn_blocking(move || stopping.shutdown()).await;
    let _ = stop_http.send(());
    let remaining = config.drain_deadline().saturating_sub(started.elapsed());
    match tokio::time::timeout(remaining, http).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(error))) => tracing::error!(%error, "HTTP server failed while stopping"),
        Ok(Err(error)) => tracing::error!(%error, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP connections still open at the deadline; closing them"),
    }
    // Agones deletes the GameServer only once every session is stored
    // elsewhere; an unclean drain leaves that to the pod's own end.
    if let Some(agones) = &agones
        && clean
    {
        let remaining = config.drain_deadline().saturating_sub(started.elapsed());
        if let Err(error) = agones.shutdown(remaining.max(Duration::from_secs(1))).await {
            tracing::error!(%error, "cannot tell Agones to shut this game server down");
        }
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        clean,
        "drain phase 3/3: stopped"
    );
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
