//! Watches: framing, resumption, 410 Expired relists, bookmarks, timeouts, streaming lists.

#[allow(unused_imports)]
use super::*;

// === watch ===

#[tokio::test]
async fn watcher_sees_initial_list_then_changes() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(
        routes(&api, "default"),
        watcher::Config::default().any_semantic(),
    ));
    assert_eq!(
        seen.until(Seen::InitDone).await,
        [Seen::Init, Seen::InitApply("apple".into()), Seen::InitDone]
    );

    api.apply(route("default", "mango", spec("mango.example")));
    api.apply(route("other", "kiwi", spec("kiwi.example"))); // other namespace: not seen
    api.apply(route("default", "apple", spec("apple2.example")));
    let deleted = api
        .delete(ROUTE_API, ROUTE_KIND, "default", "mango")
        .expect("mango deleted");
    assert_eq!(
        seen.next_n(3).await,
        [
            Seen::Apply("mango".into()),
            Seen::Apply("apple".into()),
            Seen::Delete("mango".into())
        ]
    );
    assert_eq!(
        deleted["metadata"]["resourceVersion"],
        json!(api.resource_version().to_string()),
        "a delete is a new revision"
    );
}

#[tokio::test]
async fn reflector_store_follows_create_update_delete() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let writer = reflector::store::Writer::<DynamicObject>::new(route_resource());
    let store = writer.as_reader();
    let mut seen = observe(reflector(
        writer,
        watcher(all_routes(&api), watcher::Config::default()),
    ));
    seen.until(Seen::InitDone).await;
    assert_eq!(names_in(&store), ["apple"]);

    api.apply(route("default", "mango", spec("mango.example")));
    seen.until(Seen::Apply("mango".into())).await;
    assert_eq!(names_in(&store), ["apple", "mango"]);

    api.apply(route("default", "mango", spec("mango2.example")));
    seen.until(Seen::Apply("mango".into())).await;
    let mango = store
        .find(|o| o.name_any() == "mango")
        .expect("mango in store");
    assert_eq!(mango.data["spec"]["hosts"][0], "mango2.example");
    assert_eq!(generation(&*mango), 2, "spec change bumps generation");

    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    seen.until(Seen::Delete("apple".into())).await;
    assert_eq!(names_in(&store), ["mango"]);
}

#[tokio::test]
async fn watcher_resumes_after_cut_watch_without_relisting() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(routes(&api, "default"), watcher::Config::default()));
    seen.until(Seen::InitDone).await;
    within("watch open", api.wait_watches(1)).await;
    let before = api.resource_version();

    api.cut_watches();
    api.apply(route("default", "mango", spec("mango.example")));
    let after_cut = seen.until(Seen::Apply("mango".into())).await;
    assert!(
        !after_cut.contains(&Seen::Init),
        "a resumable cut must not cause a relist: {after_cut:?}"
    );
    let requests = api.requests();
    let lists = requests
        .iter()
        .filter(|(m, p)| m == "GET" && !p.contains("watch=true"))
        .count();
    let watches_from_before = requests
        .iter()
        .filter(|(m, p)| {
            m == "GET"
                && p.contains("watch=true")
                && p.contains(&format!("resourceVersion={before}"))
        })
        .count();
    assert_eq!(lists, 1, "one list only: {requests:?}");
    assert_eq!(
        watches_from_before, 2,
        "the watch was reopened from the last seen resourceVersion: {requests:?}"
    );
}

#[tokio::test]
async fn watcher_relists_after_compaction_and_store_is_still_right() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    api.apply(route("default", "mango", spec("mango.example")));
    let writer = reflector::store::Writer::<DynamicObject>::new(route_resource());
    let store = writer.as_reader();
    let mut seen = observe(reflector(
        writer,
        watcher(routes(&api, "default"), watcher::Config::default()),
    ));
    seen.until(Seen::InitDone).await;
    within("watch open", api.wait_watches(1)).await;

    api.compact();
    api.cut_watches();
    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    api.apply(route("default", "kiwi", spec("kiwi.example")));

    let relist = seen.until(Seen::InitDone).await;
    assert!(
        relist
            .iter()
            .any(|s| matches!(s, Seen::Error(e) if e.contains("410") || e.contains("too old"))),
        "the resume got 410 Expired: {relist:?}"
    );
    assert!(
        relist.contains(&Seen::Init),
        "a new Init after 410: {relist:?}"
    );
    assert_eq!(names_in(&store), ["kiwi", "mango"]);

    // Watching again after the relist: later changes still arrive.
    api.apply(route("default", "plum", spec("plum.example")));
    seen.until(Seen::Apply("plum".into())).await;
    assert_eq!(names_in(&store), ["kiwi", "mango", "plum"]);
}

#[tokio::test]
async fn watch_from_compacted_version_gets_expired_error_event() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let old = api.resource_version();
    api.apply(route("default", "apple", spec("apple2.example")));
    api.compact();

    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &old.to_string()),
    )
    .await
    .expect("watch is answered 200");
    let events: Vec<_> = within("watch stream ends", stream.collect::<Vec<_>>()).await;
    assert_eq!(
        events.len(),
        1,
        "exactly one event, then the stream ends: {events:?}"
    );
    match &events[0] {
        Ok(WatchEvent::Error(status)) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert_eq!(
                status.message,
                format!(
                    "too old resource version: {old} ({})",
                    api.resource_version()
                )
            );
        }
        other => panic!("expected a 410 ERROR event, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_replays_history_after_resource_version_then_goes_live() {
    let api = kube_api::start().await;
    let from = api.apply(route("default", "apple", spec("apple.example")));
    api.apply(route("default", "apple", spec("apple2.example")));
    api.apply(route("default", "mango", spec("mango.example")));
    let from = from["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .to_string();

    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &from),
    )
    .await
    .expect("watch");
    let mut stream = std::pin::pin!(stream);
    let mut next = async || match within("watch event", stream.next()).await {
        Some(Ok(WatchEvent::Added(o))) => ("ADDED", o.name_any(), rv(&o)),
        Some(Ok(WatchEvent::Modified(o))) => ("MODIFIED", o.name_any(), rv(&o)),
        Some(Ok(WatchEvent::Deleted(o))) => ("DELETED", o.name_any(), rv(&o)),
        other => panic!("unexpected {other:?}"),
    };
    let first = next().await;
    let second = next().await;
    assert_eq!((first.0, first.1.as_str()), ("MODIFIED", "apple"));
    assert_eq!((second.0, second.1.as_str()), ("ADDED", "mango"));
    assert!(first.2 < second.2, "events in resourceVersion order");

    api.delete(ROUTE_API, ROUTE_KIND, "default", "apple");
    let live = next().await;
    assert_eq!(
        (live.0, live.1.as_str(), live.2),
        ("DELETED", "apple", api.resource_version())
    );
}

#[tokio::test]
async fn bookmarks_carry_the_global_resource_version() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let from = api.resource_version().to_string();
    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default(), &from),
    )
    .await
    .expect("watch");
    let mut stream = Box::pin(stream);
    within("watch open", api.wait_watches(1)).await;

    // A write to another kind moves the global revision, not this watch.
    api.apply(service("default", "shop", &[("http", 80, 8080)]));
    api.bookmark();
    let want = api.resource_version().to_string();
    match within("bookmark", stream.next()).await {
        Some(Ok(WatchEvent::Bookmark(bm))) => {
            assert_eq!(bm.metadata.resource_version, want);
            assert_eq!(bm.types.kind, ROUTE_KIND);
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }
    // Idle watches get periodic bookmarks too.
    match within("periodic bookmark", stream.next()).await {
        Some(Ok(WatchEvent::Bookmark(bm))) => assert_eq!(bm.metadata.resource_version, want),
        other => panic!("expected a periodic bookmark, got {other:?}"),
    }

    // A client that goes away closes its watch on the server.
    drop(stream);
    within(
        "watch closed after the client left",
        api.wait_for(|a| (a.watch_count() == 0).then_some(())),
    )
    .await;
}

#[tokio::test]
async fn watch_ends_cleanly_at_timeout_seconds() {
    let api = kube_api::start().await;
    let stream = within(
        "watch",
        routes(&api, "default").watch(&WatchParams::default().timeout(1), "0"),
    )
    .await
    .expect("watch");
    let events: Vec<_> = within("stream ends at timeoutSeconds", stream.collect::<Vec<_>>()).await;
    assert!(
        events
            .iter()
            .all(|e| matches!(e, Ok(WatchEvent::Bookmark(_)))),
        "nothing but (idle) bookmarks, no error: {events:?}"
    );
    within(
        "watch closed",
        api.wait_for(|a| (a.watch_count() == 0).then_some(())),
    )
    .await;
}

#[tokio::test]
async fn streaming_list_sends_initial_events_then_end_bookmark() {
    let api = kube_api::start().await;
    api.apply(route("default", "apple", spec("apple.example")));
    let mut seen = observe(watcher(
        routes(&api, "default"),
        watcher::Config::default().streaming_lists(),
    ));
    assert_eq!(
        seen.until(Seen::InitDone).await,
        [Seen::Init, Seen::InitApply("apple".into()), Seen::InitDone]
    );
    api.apply(route("default", "mango", spec("mango.example")));
    seen.until(Seen::Apply("mango".into())).await;
}
