//! Organization pages: create one, and the members page where owners and admins manage roles.

use super::forms::{action_error, ErrorPanel, FieldError, FormError, TextField};
use super::session::{session_action, with_session};
use crate::api::orgs::{get_org, AddMember, ChangeRole, CreateOrg, RemoveMember};
use crate::model::{Member, OrgDetail, Role};
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

#[component]
pub fn NewOrgPage() -> impl IntoView {
    let create = session_action::<CreateOrg>();
    let error = action_error(create);
    view! {
        <Title text="New organization" />
        {with_session(move |_| {
            view! {
                <section class="panel narrow-panel">
                    <h1>"Create an organization"</h1>
                    <p class="muted">"An organization holds your team, its connections and its installs. You can belong to several and switch between them in the header."</p>
                    <ActionForm action=create attr:class="stack" attr:novalidate=true>
                        <FormError error fields=&["name", "kind"] />
                        <TextField name="name" label="Name" error=error />
                        <fieldset class="field choice-group">
                            <legend>"What will it do on Patchbay?"</legend>
                            <label class="choice">
                                <input type="radio" name="kind" value="customer" checked />
                                <span>
                                    <strong>"Customer"</strong>
                                    <span class="muted">" — connect apps and install integrations"</span>
                                </span>
                            </label>
                            <label class="choice">
                                <input type="radio" name="kind" value="vendor" />
                                <span>
                                    <strong>"Vendor"</strong>
                                    <span class="muted">" — publish integrations in the marketplace"</span>
                                </span>
                            </label>
                            <FieldError error field="kind" />
                        </fieldset>
                        <button type="submit" class="button" disabled=move || create.pending().get()>"Create organization"</button>
                    </ActionForm>
                </section>
            }
        })}
    }
}

#[component]
pub fn OrgPage() -> impl IntoView {
    let params = use_params_map();
    let org_id = move || params.read().get("id").unwrap_or_default();
    let add = ServerAction::<AddMember>::new();
    let change = session_action::<ChangeRole>();
    let remove = session_action::<RemoveMember>();
    let detail = Resource::new(
        move || {
            (
                org_id(),
                add.version().get(),
                change.version().get(),
                remove.version().get(),
            )
        },
        |(id, ..)| get_org(id),
    );
    view! {
        <Title text="Organization" />
        {with_session(move |info| {
            let me = info.user.id;
            view! {
                <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                    {move || {
                        detail
                            .get()
                            .map(|result| match result {
                                Ok(detail) => view! { <OrgView detail me add change remove /> }.into_any(),
                                Err(error) => view! { <ErrorPanel error /> }.into_any(),
                            })
                    }}
                </Suspense>
            }
        })}
    }
}

#[component]
fn OrgView(
    detail: OrgDetail,
    me: uuid::Uuid,
    add: ServerAction<AddMember>,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let org = detail.org.clone();
    let my_role = org.role;
    let add_error = action_error(add);
    let change_error = action_error(change);
    let remove_error = action_error(remove);
    let org_id = org.id.to_string();
    let member_count = detail.members.len();
    view! {
        <Title text=org.name.clone() />
        <header class="page-header">
            <div>
                <p class="eyebrow">{format!("{} organization", org.kind.label())}</p>
                <h1>{org.name.clone()}</h1>
            </div>
            <span class="badge">{format!("You are {}", my_role.label().to_lowercase())}</span>
        </header>
        <section class="panel">
            <h2>{format!("Members ({member_count})")}</h2>
            <FormError error=change_error fields=&[] />
            <FormError error=remove_error fields=&[] />
            <table class="table">
                <thead>
                    <tr>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Email"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Joined"</th>
                        <th scope="col"><span class="visually-hidden">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>
                    {detail
                        .members
                        .into_iter()
                        .map(|member| {
                            view! { <MemberRow member me my_role org_id=org_id.clone() change remove /> }
                        })
                        .collect_view()}
                </tbody>
            </table>
        </section>
        {my_role
            .can_manage_members()
            .then(|| {
                view! {
                    <section class="panel">
                        <h2>"Add a member"</h2>
                        <p class="muted">"They need a Patchbay account first."</p>
                        <ActionForm action=add attr:class="inline-form" attr:novalidate=true>
                            <input type="hidden" name="org_id" value=org_id.clone() />
                            <TextField name="email" label="Email" error=add_error kind="email" id="member-email" class="grow" />
                            <div class="field">
                                <label for="member-role">"Role"</label>
                                <select id="member-role" name="role">
                                    {Role::ALL
                                        .into_iter()
                                        .filter(|r| my_role.can_assign(*r))
                                        .map(|r| view! { <option value=r.as_str() selected=r == Role::Member>{r.label()}</option> })
                                        .collect_view()}
                                </select>
                            </div>
                            <button type="submit" class="button">"Add member"</button>
                            <FormError error=add_error fields=&["email"] />
                        </ActionForm>
                    </section>
                }
            })}
    }
}

#[component]
fn MemberRow(
    member: Member,
    me: uuid::Uuid,
    my_role: Role,
    org_id: String,
    change: ServerAction<ChangeRole>,
    remove: ServerAction<RemoveMember>,
) -> impl IntoView {
    let is_me = member.user_id == me;
    let can_edit = my_role.can_assign(member.role);
    let user_id = member.user_id.to_string();
    let role_select_id = format!("role-{}", member.user_id);
    let (remove_org_id, remove_user_id) = (org_id.clone(), user_id.clone());
    let remove_label = if is_me { "Leave" } else { "Remove" };
    let confirm_text = if is_me {
        "Leave this organization?".to_owned()
    } else {
        format!("Remove {} from this organization?", member.display_name)
    };
    view! {
        <tr>
            <td>{member.display_name.clone()} {is_me.then(|| view! { <span class="badge badge-muted">"you"</span> })}</td>
            <td>{member.email.clone()}</td>
            <td>
                {if can_edit {
                    view! {
                        <ActionForm action=change attr:class="row-form">
                            <input type="hidden" name="org_id" value=org_id.clone() />
                            <input type="hidden" name="user_id" value=user_id.clone() />
                            <label class="visually-hidden" for=role_select_id.clone()>{format!("Role of {}", member.email)}</label>
                            <select id=role_select_id name="role">
                                {Role::ALL
                                    .into_iter()
                                    .filter(|r| my_role.can_assign(*r))
                                    .map(|r| view! { <option value=r.as_str() selected=r == member.role>{r.label()}</option> })
                                    .collect_view()}
                            </select>
                            <button type="submit" class="button button-small button-ghost">"Save"</button>
                        </ActionForm>
                    }
                        .into_any()
                } else {
                    view! { <span class="badge">{member.role.label()}</span> }.into_any()
                }}
            </td>
            <td>{member.joined_at.clone()}</td>
            <td class="cell-actions">
                {(can_edit || is_me)
                    .then(move || {
                        view! {
                            <details class="confirm">
                                <summary class="button button-small button-danger-ghost">{remove_label}</summary>
                                <div class="confirm__panel">
                                    <p>{confirm_text}</p>
                                    <ActionForm action=remove>
                                        <input type="hidden" name="org_id" value=remove_org_id />
                                        <input type="hidden" name="user_id" value=remove_user_id />
                                        <button type="submit" class="button button-small button-danger">{format!("Yes, {}", remove_label.to_lowercase())}</button>
                                    </ActionForm>
                                </div>
                            </details>
                        }
                    })}
            </td>
        </tr>
    }
}
