//! Tenants and subjects across instances, tenant-scoped channels, idempotent publishing.

use realtime_core::{ChannelRequest, History, ManagerConfig, PublishRequest, SubscribeRequest};

use crate::Backend;
use crate::support::{channel, instance, next_event, ok, runs_in, text};

/// Tenants are strict and subjects address clients; it holds across instances.
pub async fn manager_tenant_isolation(backend: &dyn Backend) {
    // Tenants sharing one channel: the routing rules alone keep them apart.
    let mut config = ManagerConfig::default();
    config.tenant_scoped_channels = false;
    let a = instance(backend, config.clone()).await;
    let b = instance(backend, config).await;
    let ch = channel("tenants");
    let who = |tenant: Option<&str>, subject: Option<&str>| SubscribeRequest {
        channels: vec![ChannelRequest::live(&ch)],
        tenant: tenant.map(Into::into),
        subject: subject.map(Into::into),
        ..Default::default()
    };
    let mut clients = vec![
        (
            "anonymous",
            ok(a.subscribe(who(None, None)).await, "sub").client,
            vec!["all", "end"],
        ),
        (
            "tenant t1",
            ok(a.subscribe(who(Some("t1"), None)).await, "sub").client,
            vec!["t1", "all", "end"],
        ),
        (
            "t1/alice",
            ok(a.subscribe(who(Some("t1"), Some("alice"))).await, "sub").client,
            vec!["t1", "t1-alice", "all", "end"],
        ),
        (
            "tenant t2",
            ok(a.subscribe(who(Some("t2"), None)).await, "sub").client,
            vec!["t2", "all", "end"],
        ),
    ];
    let sends: [(&str, Option<&str>, Option<&str>); 6] = [
        ("t1", Some("t1"), None),
        ("t2", Some("t2"), None),
        ("t1-alice", Some("t1"), Some("alice")),
        ("t1-bob", Some("t1"), Some("bob")),
        ("all", None, None),
        ("end", None, None),
    ];
    for (data, tenant, subject) in sends {
        let mut request = PublishRequest::new(&ch, data);
        request.tenant = tenant.map(Into::into);
        request.subject = subject.map(Into::into);
        // Published on the other instance: routing must hold for bus-delivered events.
        ok(b.publish(request).await, "publish");
    }
    for (name, client, expected) in &mut clients {
        let mut got = Vec::new();
        while got.last().map(String::as_str) != Some("end") {
            got.push(text(&next_event(client, name).await).to_owned());
        }
        assert_eq!(&got, expected, "{name} received the wrong events");
    }
}

/// Tenant-scoped channels (the default): each tenant's `orders` has its own positions and
/// retention; no event crosses tenants, and untenanted clients see only untenanted events.
pub async fn manager_tenant_scoped_channels(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "manager_tenant_scoped_channels") {
        return;
    }
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("scoped");
    let who = |tenant: Option<&str>| SubscribeRequest {
        channels: vec![ChannelRequest::live(&ch)],
        tenant: tenant.map(Into::into),
        ..Default::default()
    };
    let mut t1 = ok(a.subscribe(who(Some("t1"))).await, "sub t1").client;
    let mut t2 = ok(a.subscribe(who(Some("t2/odd name"))).await, "sub t2").client;
    let mut plain = ok(a.subscribe(who(None)).await, "sub plain").client;
    assert_eq!(t1.channels().collect::<Vec<_>>(), vec![ch.as_str()]);
    let publish = |tenant: Option<&'static str>, data: &'static str| {
        let mut request = PublishRequest::new(&ch, data);
        request.tenant = tenant.map(Into::into);
        request
    };
    let mut ids = Vec::new();
    for (tenant, data) in [
        (Some("t1"), "t1 first"),
        (Some("t2/odd name"), "t2 first"),
        (None, "plain"),
        (Some("t1"), "t1 second"),
    ] {
        ids.push(ok(b.publish(publish(tenant, data)).await, "publish").id);
    }
    assert_eq!(
        (ids[0].offset, ids[1].offset, ids[2].offset, ids[3].offset),
        (1, 1, 1, 2),
        "each tenant counts its own positions: no jumps that reveal the others"
    );
    let t1_got = [
        next_event(&mut t1, "t1").await,
        next_event(&mut t1, "t1").await,
    ];
    assert_eq!(
        t1_got.iter().map(text).collect::<Vec<_>>(),
        vec!["t1 first", "t1 second"]
    );
    assert_eq!(text(&next_event(&mut t2, "t2").await), "t2 first");
    assert_eq!(text(&next_event(&mut plain, "plain").await), "plain");
    // The wire carries the channel's plain name.
    let message = realtime_core::message::encode_event(&t1_got[0]);
    let json = String::from_utf8_lossy(message.bytes());
    assert!(json.contains(&format!("\"channel\":\"{ch}\"")), "{json}");
    // A resume of t1 replays only t1's events, exactly.
    let resume = SubscribeRequest {
        channels: vec![ChannelRequest::resume(&ch, t1_got[0].id.to_token())],
        tenant: Some("t1".into()),
        ..Default::default()
    };
    let sub = ok(b.subscribe(resume).await, "resume t1");
    let replayed: Vec<_> = sub.replay[0].events.iter().map(|e| text(e)).collect();
    assert_eq!(
        (sub.replay[0].gap.as_ref(), replayed),
        (None, vec!["t1 second"])
    );
    // Nothing else arrived anywhere.
    for (name, client) in [("t1", &mut t1), ("t2", &mut t2), ("plain", &mut plain)] {
        assert!(
            client.try_recv().is_none(),
            "{name} received another tenant's event"
        );
    }
}

/// A publish retried with the same idempotency key, on another instance, returns the first
/// id, and subscribers receive the event once.
pub async fn manager_idempotent_publish(backend: &dyn Backend) {
    if !runs_in(backend, History::Shared, "manager_idempotent_publish") {
        return;
    }
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let ch = channel("idempotent");
    let mut client = ok(a.subscribe(SubscribeRequest::channel(&ch)).await, "sub").client;
    let request = |data: &str| {
        let mut request = PublishRequest::new(&ch, data.to_owned());
        request.idempotency_key = Some("order-42-created".into());
        request
    };
    let first = ok(a.publish(request("x")).await, "publish");
    let retried = ok(b.publish(request("x")).await, "retry on another instance");
    assert_eq!(retried.id, first.id);
    let end = ok(
        b.publish(PublishRequest::new(&ch, "end")).await,
        "publish end",
    );
    assert_eq!(next_event(&mut client, "first").await.id, first.id);
    assert_eq!(
        next_event(&mut client, "end").await.id,
        end.id,
        "the retry was not delivered again"
    );

    // Keys are per tenant even where tenants share a channel: tenant t2 reusing t1's key
    // publishes its own event (it got t1's position back, and its event was dropped).
    let mut config = ManagerConfig::default();
    config.tenant_scoped_channels = false;
    let c = instance(backend, config.clone()).await;
    let d = instance(backend, config).await;
    let ch = channel("idempotent-tenants");
    let subscribe = |tenant: &str| SubscribeRequest {
        channels: vec![ChannelRequest::live(&ch)],
        tenant: Some(tenant.into()),
        ..Default::default()
    };
    let mut t2 = ok(c.subscribe(subscribe("t2")).await, "sub t2").client;
    let request = |tenant: &str, data: &str| {
        let mut request = PublishRequest::new(&ch, data.to_owned());
        request.tenant = Some(tenant.into());
        request.idempotency_key = Some("order-42-created".into());
        request
    };
    let first = ok(c.publish(request("t1", "t1's")).await, "publish t1");
    let other = ok(d.publish(request("t2", "t2's")).await, "publish t2");
    assert_ne!(other.id, first.id, "t2 was handed t1's event");
    let retried = ok(d.publish(request("t1", "t1's")).await, "retry t1");
    assert_eq!(
        retried.id, first.id,
        "a tenant's own retry is still idempotent"
    );
    let got = next_event(&mut t2, "t2's event").await;
    assert_eq!((got.id, text(&got)), (other.id, "t2's"));
}

/// Tenants and channels named like a backend's own control names (probes, sync subjects,
/// control channels, key suffixes, escapes) are ordinary ones: each event reaches its own
/// subscriber, once, across instances. (A tenant named `probe.x` scoped to `~probe.x~…`,
/// which RabbitMQ instances took for their health probes and dropped.)
pub async fn manager_adversarial_names(backend: &dyn Backend) {
    let a = instance(backend, ManagerConfig::default()).await;
    let b = instance(backend, ManagerConfig::default()).await;
    let unique = channel("");
    let tenants = [
        None,
        Some("probe.x"),
        Some("probe."),
        Some("~probe.x~"),
        Some("realtime-control"),
        Some("~realtime-control"),
        Some("_REALTIME_SYNC.1"),
        Some("%7E"),
        Some("{x}:m"),
        Some("!probe. *>"),
        Some("tenant \u{e9}\u{1f642}"),
    ];
    let channels = [
        "probe.x",
        "realtime-control",
        "_REALTIME_SYNC.1",
        ":m",
        "@/-",
    ];
    let mut clients = Vec::new();
    for tenant in tenants {
        for name in channels {
            let ch = format!("{name}{unique}");
            let request = SubscribeRequest {
                channels: vec![ChannelRequest::live(&ch)],
                tenant: tenant.map(Into::into),
                ..Default::default()
            };
            let client = ok(a.subscribe(request).await, "subscribe").client;
            clients.push((tenant, ch, client));
        }
    }
    for (tenant, ch, _) in &clients {
        for data in ["event", "end"] {
            let mut request = PublishRequest::new(ch, format!("{data} {tenant:?} {ch}"));
            request.tenant = tenant.map(Into::into);
            ok(b.publish(request).await, "publish");
        }
    }
    for (tenant, ch, client) in &mut clients {
        for data in ["event", "end"] {
            let got = next_event(client, "its own event").await;
            assert_eq!(
                text(&got),
                format!("{data} {tenant:?} {ch}"),
                "tenant {tenant:?}, channel {ch}"
            );
        }
    }
}
