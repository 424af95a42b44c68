//! The signed-in session as the UI sees it: one resource, refetched whenever an action that
//! changes it succeeds.

use crate::api::auth::get_session;
use crate::error::AppError;
use crate::model::SessionInfo;
use leptos::prelude::*;
use leptos::server_fn::error::FromServerFnError;
use leptos::server_fn::ServerFn;

/// Bumped after every successful action that changes who is signed in or the active organization.
#[derive(Clone, Copy)]
pub struct SessionEpoch(pub RwSignal<u32>);

/// The session resource, provided by [`provide_session`].
#[derive(Clone, Copy)]
pub struct SessionResource(pub Resource<Result<Option<SessionInfo>, AppError>>);

pub fn provide_session() {
    let epoch = RwSignal::new(0);
    provide_context(SessionEpoch(epoch));
    provide_context(SessionResource(Resource::new(
        move || epoch.get(),
        |_| get_session(),
    )));
}

pub fn use_session() -> Resource<Result<Option<SessionInfo>, AppError>> {
    expect_context::<SessionResource>().0
}

/// A server action whose success changes the session (sign-in, switching organizations, …). Create
/// it inside a route, so that errors from a form posted without JavaScript reach it.
pub fn session_action<S>() -> ServerAction<S>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: FromServerFnError + Send + Sync + 'static,
{
    let action = ServerAction::<S>::new();
    bump_on_success(action, expect_context::<SessionEpoch>().0);
    action
}

/// Bumps `counter` after every successful run of `action`, so that what depends on it refetches
/// (and nothing refetches when the action fails, which keeps what was typed).
pub fn bump_on_success<S>(action: ServerAction<S>, counter: RwSignal<u32>)
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: FromServerFnError + Send + Sync + 'static,
{
    Effect::new(move |_| {
        if action.value().with(|v| matches!(v, Some(Ok(_)))) {
            counter.update(|n| *n += 1);
        }
    });
}

/// Renders `signed_in` with the session, a sign-in prompt when nobody is signed in.
pub fn with_session<F, V>(signed_in: F) -> impl IntoView
where
    F: Fn(SessionInfo) -> V + Send + Sync + Clone + 'static,
    V: IntoView + 'static,
{
    let session = use_session();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let signed_in = signed_in.clone();
                session
                    .get()
                    .map(move |result| match result {
                        Ok(Some(info)) => signed_in(info).into_any(),
                        Ok(None) => view! { <super::auth::SignInPrompt /> }.into_any(),
                        Err(error) => view! { <super::forms::ErrorPanel error /> }.into_any(),
                    })
            }}
        </Suspense>
    }
}
