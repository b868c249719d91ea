//! Conformance of [`AssistantStore`]: providers and their keys, threads per user, messages in
//! order, proposals decided once.

use super::ClusterServices;
use super::fixture::{fixture, not_found, ok};
use crate::model::*;
use crate::store::{AssistantStore, AuthStore};
use serde_json::json;

/// Runs the checks of the assistant's state.
pub async fn run<S: ClusterServices + AssistantStore + AuthStore + ?Sized>(store: &S) {
    providers(store).await;
    threads_messages_and_proposals(store).await;
}

/// Providers: an omitted key keeps the stored one, listings never carry keys, one default at
/// a time, removal.
pub async fn providers<S: AssistantStore + ?Sized>(store: &S) {
    const C: &str = "providers";
    let set = |name: &str, key: Option<&str>, default: bool| ProviderSettings {
        name: name.into(),
        base_url: "http://127.0.0.1:9/v1".into(),
        model: "m".into(),
        api_key: key.map(str::to_string),
        default,
        timeout_ms: 5_000,
    };
    let a = ok(
        store
            .set_provider(&set("conf-a", Some("sk-a-secret"), true), 1)
            .await,
        C,
        "set a provider",
    );
    assert!(a.has_key && a.default, "store conformance [{C}]: {a:?}");
    let b = ok(
        store.set_provider(&set("conf-b", None, true), 2).await,
        C,
        "set a second default",
    );
    assert!(
        !b.has_key,
        "store conformance [{C}]: no key was given: {b:?}"
    );
    let mine: Vec<Provider> = ok(store.providers().await, C, "list")
        .into_iter()
        .filter(|p| p.name.starts_with("conf-"))
        .collect();
    assert_eq!(
        mine.iter()
            .map(|p| (p.name.as_str(), p.default))
            .collect::<Vec<_>>(),
        [("conf-a", false), ("conf-b", true)],
        "store conformance [{C}]: one default at a time, listed by name"
    );
    let again = ok(
        store.set_provider(&set("conf-a", None, false), 3).await,
        C,
        "change a provider without its key",
    );
    assert!(
        again.has_key,
        "store conformance [{C}]: an omitted key keeps the stored one"
    );
    assert_eq!(
        ok(store.provider_key("conf-a").await, C, "read the key").as_deref(),
        Some("sk-a-secret"),
        "store conformance [{C}]: the key is kept"
    );
    not_found(
        store.provider_key("conf-none").await,
        C,
        "the key of a missing provider",
    );
    ok(store.remove_provider("conf-a").await, C, "remove");
    ok(store.remove_provider("conf-b").await, C, "remove");
    not_found(
        store.remove_provider("conf-a").await,
        C,
        "removing it again",
    );
}

/// Threads belong to a user and a cluster and list newest first; messages keep their order
/// and tool calls; a proposal moves out of `pending` once; deleting the user deletes its
/// threads.
pub async fn threads_messages_and_proposals<
    S: ClusterServices + AssistantStore + AuthStore + ?Sized,
>(
    store: &S,
) {
    const C: &str = "threads";
    let fx = fixture(store, C, "conf-threads", 1).await;
    let user = ok(
        store
            .create_user(&NewUser {
                name: "conf-asker".into(),
                password_hash: None,
                role: Role::Viewer,
            })
            .await,
        C,
        "create a user",
    );
    let new = |title: &str| NewThread {
        user: user.id,
        cluster: fx.cluster.id,
        title: title.into(),
    };
    let t1 = ok(
        store.create_thread(&new("first")).await,
        C,
        "create a thread",
    );
    let t2 = ok(
        store.create_thread(&new("second")).await,
        C,
        "create a thread",
    );
    assert_eq!(
        (t1.user.as_str(), t1.cluster.as_str()),
        ("conf-asker", fx.cluster.name.as_str()),
        "store conformance [{C}]: a thread names its user and cluster"
    );
    let listed = ok(store.threads(user.id).await, C, "list threads");
    assert_eq!(
        listed.iter().map(|t| t.id).collect::<Vec<_>>(),
        [t2.id, t1.id],
        "store conformance [{C}]: newest first"
    );
    not_found(
        store
            .create_thread(&NewThread {
                user: UserId(i64::MAX),
                ..new("x")
            })
            .await,
        C,
        "a thread of a missing user",
    );
    let call = ToolCall {
        id: "c1".into(),
        name: "list_hosts".into(),
        arguments: json!({"cluster": fx.cluster.name}),
    };
    for (role, content, calls, answers) in [
        (ChatRole::User, "how are my hosts?", vec![], None),
        (ChatRole::Assistant, "", vec![call.clone()], None),
        (ChatRole::Tool, "[]", vec![], Some("c1".to_string())),
        (ChatRole::Assistant, "all fine", vec![], None),
    ] {
        ok(
            store
                .add_message(&NewChatMessage {
                    thread: t1.id,
                    role,
                    content: content.into(),
                    tool_calls: calls,
                    tool_call_id: answers,
                })
                .await,
            C,
            "add a message",
        );
    }
    let msgs = ok(store.messages(t1.id).await, C, "read messages");
    assert_eq!(
        msgs.iter().map(|m| m.role).collect::<Vec<_>>(),
        [
            ChatRole::User,
            ChatRole::Assistant,
            ChatRole::Tool,
            ChatRole::Assistant
        ],
        "store conformance [{C}]: messages in order"
    );
    assert_eq!(
        msgs[1].tool_calls,
        [call],
        "store conformance [{C}]: tool calls kept"
    );
    assert_eq!(msgs[2].tool_call_id.as_deref(), Some("c1"));
    let p = ok(
        store
            .add_proposal(&NewProposal {
                thread: t1.id,
                title: "restart zk".into(),
                action: SuggestedAction {
                    title: "restart zk".into(),
                    method: "POST".into(),
                    path: "/clusters/c/jobs".into(),
                    body: Some(json!({"command": "restart", "target": "cluster"})),
                },
            })
            .await,
        C,
        "add a proposal",
    );
    assert_eq!(p.state, ProposalState::Pending);
    let claim = |at| {
        store.decide_proposal(
            p.id,
            ProposalState::Pending,
            ProposalState::Confirmed,
            None,
            at,
        )
    };
    assert!(
        ok(claim(10).await, C, "confirm"),
        "store conformance [{C}]: the first claim wins"
    );
    assert!(
        !ok(claim(11).await, C, "confirm again"),
        "store conformance [{C}]: a proposal is confirmed once"
    );
    let result = ProposalResult {
        status: 202,
        body: json!({"id": 7}),
    };
    ok(
        store
            .decide_proposal(
                p.id,
                ProposalState::Confirmed,
                ProposalState::Confirmed,
                Some(&result),
                12,
            )
            .await,
        C,
        "record the result",
    );
    let read = ok(store.proposal(p.id).await, C, "read the proposal").expect("it exists");
    assert_eq!(
        (read.state, read.result, read.decided_at),
        (ProposalState::Confirmed, Some(result), Some(12)),
        "store conformance [{C}]: state, result and time kept"
    );
    assert_eq!(
        ok(store.proposals(t1.id).await, C, "list proposals").len(),
        1
    );
    ok(store.delete_user(user.id).await, C, "delete the user");
    assert!(
        ok(store.thread(t1.id).await, C, "read a deleted user's thread").is_none(),
        "store conformance [{C}]: a user's threads go with it"
    );
}
