//! Properties of the parsers, the wire encoding and routing, over generated inputs.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use realtime_core::routing::{self, Route};
use realtime_core::sse::{self, Decoder};
use realtime_core::{
    Epoch, Event, Manager, ManagerConfig, Message, NewEvent, Position, PublishRequest,
    SubscribeRequest,
};

fn channel_name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_.:/@-]{1,40}"
}

proptest! {
    /// The names a bus carries — a plain channel, or a tenant's scoped one, for any tenant
    /// the manager accepts — never start with `!` nor contain a control character or a
    /// space: backends build their control names (AMQP probes: `!probe.<queue>`) from
    /// those, so no tenant or channel can be taken for one.
    #[test]
    fn carried_channel_names_never_look_like_control_names(
        tenant in "\\PC{1,64}",
        channel in channel_name(),
    ) {
        prop_assume!(routing::validate_routing_key("tenant", &tenant).is_ok());
        routing::validate_channel(&channel, 128).unwrap();
        for name in [channel.clone(), routing::scoped_channel(&tenant, &channel)] {
            prop_assert!(!name.starts_with('!'), "{}", name);
            prop_assert!(!name.chars().any(|c| c.is_control() || c == ' '), "{:?}", name);
        }
    }

    /// Every position renders to a token that parses back to it.
    #[test]
    fn position_tokens_round_trip(epoch: u64, offset: u64) {
        let position = Position::new(Epoch(epoch), offset);
        prop_assert_eq!(Position::parse(&position.to_token()), Ok(position));
    }

    /// Any text either is refused or is exactly the canonical token of what it parses to:
    /// no two tokens name one position, and nothing panics.
    #[test]
    fn any_token_is_refused_or_canonical(token in "\\PC{0,40}|[0-9a-f]{1,17}-[0-9]{1,21}") {
        if let Ok(position) = Position::parse(&token) {
            prop_assert_eq!(position.to_token(), token);
        }
    }

    /// What the SSE encoder writes, the decoder reads back whole, however the bytes are
    /// split: id, type and every line of the data (CR, LF and CRLF breaks included).
    #[test]
    fn sse_frames_round_trip(
        data in "[^\r]{0,200}(\r\n[^\r]{0,20}){0,3}",
        kind in proptest::option::of("[a-z][a-z0-9._-]{0,20}"),
        epoch: u64,
        offset: u64,
        split in 0usize..400,
    ) {
        let mut new = NewEvent::new("c", data.clone());
        new.event_type = kind.clone();
        let event = new.into_event(Position::new(Epoch(epoch), offset));
        let bytes = sse::encode_event(&event);
        let split = split.min(bytes.len());
        let mut decoder = Decoder::new();
        let mut frames = decoder.feed(&bytes[..split]);
        frames.extend(decoder.feed(&bytes[split..]));
        prop_assert_eq!(frames.len(), 1);
        let frame = &frames[0];
        prop_assert_eq!(frame.id.clone(), Some(event.id.to_token()));
        prop_assert_eq!(frame.event.clone(), kind);
        // SSE carries lines: any line break arrives as LF.
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        prop_assert_eq!(frame.data.clone(), Some(expected));
    }

    /// A channel name is accepted exactly when it is 1..=max bytes of the allowed set.
    #[test]
    fn channel_names_follow_the_rule(name in "\\PC{0,50}", max in 1usize..60) {
        let allowed = !name.is_empty()
            && name.len() <= max
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b));
        prop_assert_eq!(routing::validate_channel(&name, max).is_ok(), allowed);
    }

    /// A tenant-scoped channel shows its plain name, and never equals a valid plain name
    /// (no tenant can reach another's channel, or a plain one, by choosing names).
    #[test]
    fn scoped_channels_cannot_collide(tenant in "\\PC{1,30}", channel in channel_name()) {
        let scoped = routing::scoped_channel(&tenant, &channel);
        prop_assert_eq!(routing::channel_name(&scoped), channel.as_str());
        prop_assert!(routing::validate_channel(&scoped, usize::MAX).is_err());
    }

    /// Two different tenants never share a scoped channel.
    #[test]
    fn scoped_channels_are_distinct_per_tenant(
        a in "\\PC{1,20}",
        b in "\\PC{1,20}",
        channel in channel_name(),
    ) {
        prop_assume!(a != b);
        prop_assert_ne!(routing::scoped_channel(&a, &channel), routing::scoped_channel(&b, &channel));
    }

    /// Routing is strict for any tenant and subject mix: a tenant's event reaches only that
    /// tenant's clients, a subject's event only that subject's clients.
    #[test]
    fn routing_never_crosses_tenants(
        client_tenant in proptest::option::of("[ab]"),
        client_subject in proptest::option::of("[xy]"),
        event_tenant in proptest::option::of("[ab]"),
        event_subject in proptest::option::of("[xy]"),
    ) {
        let route = Route {
            tenant: client_tenant.as_deref().map(Into::into),
            subject: client_subject.as_deref().map(Into::into),
        };
        let mut new = NewEvent::new("c", "x");
        new.tenant = event_tenant.clone();
        new.subject = event_subject.clone();
        let event: Event = new.into_event(Position::new(Epoch(1), 1));
        let accepted = route.accepts(&event);
        if let Some(tenant) = &event_tenant {
            prop_assert!(!accepted || client_tenant.as_ref() == Some(tenant));
        }
        if let Some(subject) = &event_subject {
            prop_assert!(!accepted || client_subject.as_ref() == Some(subject));
        }
        if event_tenant.is_none() && event_subject.is_none() {
            prop_assert!(accepted, "a broadcast reaches everyone");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Through a whole manager, in both channel modes: whatever mix of clients and events,
    /// no client receives an event of another tenant, or of no tenant when it has one and
    /// channels are scoped.
    #[test]
    fn no_cross_tenant_delivery_through_the_manager(
        clients in proptest::collection::vec(proptest::option::of("[abc]"), 1..6),
        events in proptest::collection::vec(proptest::option::of("[abc]"), 1..12),
        scoped: bool,
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let mut config = ManagerConfig::default();
            config.tenant_scoped_channels = scoped;
            let manager = Manager::builder().config(config).build().unwrap();
            let mut subscribed = Vec::new();
            for tenant in &clients {
                let request = SubscribeRequest {
                    tenant: tenant.clone(),
                    ..SubscribeRequest::channel("orders")
                };
                subscribed.push((tenant.clone(), manager.subscribe(request).await.unwrap().client));
            }
            for (i, tenant) in events.iter().enumerate() {
                let mut request = PublishRequest::new("orders", format!("{i}"));
                request.tenant = tenant.clone();
                manager.publish(request).await.unwrap();
            }
            for (tenant, client) in &mut subscribed {
                let mut expected: Vec<String> = Vec::new();
                for (i, event_tenant) in events.iter().enumerate() {
                    let reaches = match (event_tenant, &*tenant) {
                        (Some(e), Some(c)) => e == c,
                        (Some(_), None) => false,
                        (None, None) => true,
                        (None, Some(_)) => !scoped,
                    };
                    if reaches {
                        expected.push(i.to_string());
                    }
                }
                let mut got = Vec::new();
                while let Some(Message::Event(event)) = client.try_recv() {
                    got.push(String::from_utf8_lossy(&event.data).into_owned());
                }
                assert_eq!(got, expected, "client of tenant {tenant:?}");
            }
        });
    }
}
