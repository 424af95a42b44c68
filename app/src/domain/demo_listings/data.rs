//! The content of the demo listings: names, copy and recipes, with the real stream and field names
//! of the provider specs in `connectors/providers`. Destinations in the sandbox apps map only the
//! fields the sandbox lets an API client write.

use super::Stage::{Draft, Featured, InReview, Published};
use super::{Config, DemoListing, BLUEBIRD, NORTHWIND};

/// Every demo listing, in catalog order of creation.
pub(super) const LISTINGS: &[DemoListing] = &[
    DemoListing {
        vendor: &NORTHWIND,
        stage: Featured,
        name: "HubSpot contacts → Patchbay",
        slug: "hubspot-contacts-to-patchbay",
        tagline: "Keep a clean, queryable copy of every HubSpot contact in Patchbay.",
        description: r#"## Your CRM, one API call away

Pull contacts out of HubSpot on a schedule and keep them in a Patchbay collection your own tools can read, without HubSpot's rate limits getting in the way.

- Email, name, phone and company for every contact
- Incremental: only contacts changed since the last run are read
- Archived contacts can be included or left out

Set it up once; the sync keeps going while you sleep."#,
        categories: &["crm", "marketing"],
        source: ("hubspot", &["contacts"]),
        destination: ("patchbay", "contacts"),
        mapping: &[
            ("email", "properties.email"),
            ("first_name", "properties.firstname"),
            ("last_name", "properties.lastname"),
            ("phone", "properties.phone"),
            ("company", "properties.company"),
            ("updated_at", "updatedAt"),
        ],
        config: &[Config {
            key: "include_archived",
            kind: "boolean",
            label: "Include archived contacts",
            help: "Copy contacts that were archived in HubSpot too.",
            required: false,
            default: "false",
        }],
        schedule: ("1h", &["15m", "1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "HubSpot companies for marketing lists",
        slug: "hubspot-companies-marketing-lists",
        tagline: "Turn HubSpot companies into target-account lists for your campaigns.",
        description: r#"## Account-based marketing, minus the spreadsheets

Every night, the companies in your HubSpot portal land in a **target accounts** collection, tagged with the marketing list you choose.

- Company name, domain and industry
- The HubSpot id, so you can link back
- One list per install: install it twice for two lists"#,
        categories: &["marketing", "crm"],
        source: ("hubspot", &["companies"]),
        destination: ("patchbay", "target_accounts"),
        mapping: &[
            ("hubspot_id", "id"),
            ("company", "properties.name"),
            ("domain", "properties.domain"),
            ("industry", "properties.industry"),
            ("updated_at", "updatedAt"),
        ],
        config: &[Config {
            key: "list_id",
            kind: "number",
            label: "Marketing list ID",
            help: "The numeric id of the list these accounts belong to.",
            required: true,
            default: "",
        }],
        schedule: ("24h", &["6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Shopify orders to Sandbox CRM",
        slug: "shopify-orders-to-sandbox-crm",
        tagline: "Every Shopify buyer becomes a Sandbox CRM contact, minutes after checkout.",
        description: r#"## From checkout to CRM

When an order is placed in your Shopify store, the buyer is added to Sandbox CRM (or updated, if they are already there). Your sales team sees new customers the same day.

- Buyer email, full name and phone
- Runs on Shopify's order webhooks, with a schedule as a safety net
- Only orders above a minimum total, if you like

## Good to know

Orders without an email (point-of-sale walk-ins) are skipped."#,
        categories: &["e-commerce", "crm"],
        source: ("shopify", &["orders"]),
        destination: ("sandbox-crm", "contacts"),
        mapping: &[
            ("email", "email"),
            ("name", "customer.default_address.name"),
            ("phone", "customer.phone"),
        ],
        config: &[Config {
            key: "min_total",
            kind: "number",
            label: "Minimum order total",
            help: "Orders below this amount, in the shop's currency, are skipped.",
            required: false,
            default: "0",
        }],
        schedule: ("15m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Featured,
        name: "Stripe invoices ledger",
        slug: "stripe-invoices-ledger",
        tagline: "A live ledger of your Stripe invoices: what is due, what is paid.",
        description: r#"## Know where every invoice stands

The ledger keeps one row per Stripe invoice, updated as customers pay. Finance gets a single place to answer "who owes us what?" without logging in to Stripe.

- Invoice number, customer, status and due date
- Amounts due and paid, in the smallest currency unit
- Updated by Stripe webhooks within seconds of a payment"#,
        categories: &["payments", "analytics"],
        source: ("stripe", &["invoices"]),
        destination: ("patchbay", "invoices"),
        mapping: &[
            ("invoice_number", "number"),
            ("customer_id", "customer"),
            ("status", "status"),
            ("amount_due", "amount_due"),
            ("amount_paid", "amount_paid"),
            ("due_date", "due_date"),
        ],
        config: &[],
        schedule: ("1h", &["15m", "1h", "6h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Featured,
        name: "GitHub issues tracker",
        slug: "github-issues-tracker",
        tagline: "Follow the issues of a GitHub repository from one tidy board.",
        description: r#"## Issues, without the notification flood

Pick a repository and, optionally, a label. Patchbay keeps its issues in a collection your team's dashboard can read: titles, states, authors and labels, kept current by GitHub webhooks.

- Open and closed issues, newest changes first
- Filter by a label such as `bug` or `customer`
- No write access asked for: the sync only reads"#,
        categories: &["developer-tools", "productivity"],
        source: ("github", &["issues"]),
        destination: ("patchbay", "issues"),
        mapping: &[
            ("number", "number"),
            ("title", "title"),
            ("state", "state"),
            ("author", "user.login"),
            ("labels", "labels"),
            ("updated_at", "updated_at"),
        ],
        config: &[Config {
            key: "label",
            kind: "text",
            label: "Only issues with this label",
            help: "Leave empty to follow every issue.",
            required: false,
            default: "",
        }],
        schedule: ("15m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Salesforce accounts sync",
        slug: "salesforce-accounts-sync",
        tagline: "Salesforce accounts, copied incrementally into Patchbay.",
        description: r#"## Accounts where your reports can reach them

This sync reads Salesforce accounts with SOQL, only the ones modified since the last run, and keeps them in an **accounts** collection.

- Name, industry, website and phone
- The Salesforce Id, for links back to the record
- Light on your daily API allowance: one query per page of changes

Reports that join accounts with billing or support data become a single query."#,
        categories: &["crm", "analytics"],
        source: ("salesforce", &["accounts"]),
        destination: ("patchbay", "accounts"),
        mapping: &[
            ("salesforce_id", "Id"),
            ("name", "Name"),
            ("industry", "Industry"),
            ("website", "Website"),
            ("phone", "Phone"),
            ("modified_at", "LastModifiedDate"),
        ],
        config: &[],
        schedule: ("6h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Featured,
        name: "Sandbox Shop customers → Sandbox CRM",
        slug: "sandbox-shop-customers-to-sandbox-crm",
        tagline: "Try it now: copy the demo shop's customers into the demo CRM.",
        description: r#"## The five-minute tour

Both apps ship with Patchbay, so you can install this listing, connect the two sandbox accounts and watch a real sync run, with no outside account needed.

- New shop customers appear as CRM contacts
- Changes arrive by signed webhook, then on schedule
- Run it by hand from the install page whenever you like

Edit a customer in Sandbox Shop and run the sync again: the contact is updated, not duplicated."#,
        categories: &["e-commerce", "crm"],
        source: ("sandbox-shop", &["customers"]),
        destination: ("sandbox-crm", "contacts"),
        mapping: &[("email", "email"), ("name", "first_name")],
        config: &[],
        schedule: ("5m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Featured,
        name: "Sandbox Shop orders → Patchbay",
        slug: "sandbox-shop-orders-to-patchbay",
        tagline: "Stream the demo shop's orders into Patchbay for reporting.",
        description: r#"## Orders, ready for reporting

Every order from Sandbox Shop is kept in an **orders** collection: totals in cents, currency and status, updated as orders are paid, fulfilled or refunded.

- Order and customer ids
- Total, currency and status
- When the order was placed"#,
        categories: &["e-commerce", "analytics"],
        source: ("sandbox-shop", &["orders"]),
        destination: ("patchbay", "orders"),
        mapping: &[
            ("order_id", "id"),
            ("customer_id", "customer_id"),
            ("total_cents", "total_cents"),
            ("currency", "currency"),
            ("status", "status"),
            ("placed_at", "created_at"),
        ],
        config: &[],
        schedule: ("15m", &["5m", "15m", "1h", "6h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Sandbox CRM people directory",
        slug: "sandbox-crm-people-directory",
        tagline: "A searchable directory of every contact in Sandbox CRM.",
        description: r#"## Everyone you work with, in one list

Keep the contacts of Sandbox CRM in a **people** collection that your intranet, chat bot or spreadsheet can search.

- Full name, email and phone
- The company each person belongs to
- Updated within seconds through CRM webhooks"#,
        categories: &["crm", "productivity"],
        source: ("sandbox-crm", &["contacts"]),
        destination: ("patchbay", "people"),
        mapping: &[
            ("full_name", "name"),
            ("email", "email"),
            ("phone", "phone"),
            ("company_id", "company_id"),
            ("updated_at", "updated_at"),
        ],
        config: &[],
        schedule: ("1h", &["15m", "1h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Sandbox CRM companies report",
        slug: "sandbox-crm-companies-report",
        tagline: "Company records from Sandbox CRM, ready for your BI tool.",
        description: r#"## A company table your analysts will like

Sandbox CRM's companies, with their domains and timestamps, copied to a **companies** collection once a day, or more often if you prefer.

- Company id, name and domain
- When each company was added and last changed

Pair it with the people directory to count contacts per company."#,
        categories: &["analytics", "crm"],
        source: ("sandbox-crm", &["companies"]),
        destination: ("patchbay", "companies"),
        mapping: &[
            ("company_id", "id"),
            ("name", "name"),
            ("domain", "domain"),
            ("created_at", "created_at"),
            ("updated_at", "updated_at"),
        ],
        config: &[],
        schedule: ("24h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Stripe charges for support agents",
        slug: "stripe-charges-for-support",
        tagline: "Let support see a customer's recent charges and refunds at a glance.",
        description: r#"## Answer "was I charged twice?" in seconds

Support agents should not need a Stripe login to check a payment. This sync keeps charges in a **support charges** collection your help desk can look up by customer.

- Amount, currency and status of each charge
- Whether it was refunded
- Escalations go to the address you choose

Charges arrive by Stripe webhook, so the record is there before the customer writes in."#,
        categories: &["support", "payments"],
        source: ("stripe", &["charges"]),
        destination: ("patchbay", "support_charges"),
        mapping: &[
            ("charge_id", "id"),
            ("customer_id", "customer"),
            ("amount", "amount"),
            ("currency", "currency"),
            ("status", "status"),
            ("refunded", "refunded"),
        ],
        config: &[Config {
            key: "escalation_email",
            kind: "email",
            label: "Escalation address",
            help: "Where agents forward disputed charges.",
            required: false,
            default: "",
        }],
        schedule: ("15m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Stripe customers → HubSpot",
        slug: "stripe-customers-to-hubspot",
        tagline: "Paying customers from Stripe, added to HubSpot as contacts.",
        description: r#"## Sales and billing, finally agreeing

When someone becomes a Stripe customer, they show up in HubSpot with their contact details and billing address, so marketing can stop emailing people who already pay.

- Email and phone
- City, country and postal code from the billing address
- Existing HubSpot contacts are updated, not duplicated"#,
        categories: &["payments", "crm", "marketing"],
        source: ("stripe", &["customers"]),
        destination: ("hubspot", "contacts"),
        mapping: &[
            ("email", "email"),
            ("phone", "phone"),
            ("city", "address.city"),
            ("country", "address.country"),
            ("zip", "address.postal_code"),
        ],
        config: &[],
        schedule: ("1h", &["15m", "1h", "6h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Shopify customers → HubSpot",
        slug: "shopify-customers-to-hubspot",
        tagline: "Grow your HubSpot audience with every Shopify customer.",
        description: r#"## Email the people who actually buy

Shopify customers are added to HubSpot with their names and what they have spent, ready for segments like "spent over $500".

- Email, first and last name, phone
- Lifetime spend as HubSpot's total revenue
- Only customers with a given Shopify tag, if you set one

## Privacy

Only customers who can be emailed should be synced; use a tag such as `newsletter` to limit the sync to them."#,
        categories: &["e-commerce", "marketing"],
        source: ("shopify", &["customers"]),
        destination: ("hubspot", "contacts"),
        mapping: &[
            ("email", "email"),
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("phone", "phone"),
            ("total_revenue", "total_spent"),
        ],
        config: &[Config {
            key: "tag",
            kind: "text",
            label: "Shopify tag",
            help: "Only customers with this tag are synced.",
            required: false,
            default: "newsletter",
        }],
        schedule: ("1h", &["15m", "1h", "6h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Shopify sales feed",
        slug: "shopify-sales-feed",
        tagline: "Shopify orders and their payment and fulfillment status, for your dashboards.",
        description: r#"## A sales feed that keeps up

Orders from your Shopify store, with totals and their payment and fulfillment status, in an **orders** collection your dashboards can chart.

- Order name (#1001), buyer email and total
- Financial and fulfillment status
- Test orders left out unless you ask for them"#,
        categories: &["e-commerce", "analytics"],
        source: ("shopify", &["orders"]),
        destination: ("patchbay", "orders"),
        mapping: &[
            ("order_name", "name"),
            ("email", "email"),
            ("total_price", "total_price"),
            ("currency", "currency"),
            ("financial_status", "financial_status"),
            ("fulfillment_status", "fulfillment_status"),
        ],
        config: &[Config {
            key: "include_test_orders",
            kind: "boolean",
            label: "Include test orders",
            help: "",
            required: false,
            default: "false",
        }],
        schedule: ("1h", &["15m", "1h", "6h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Shopify customer profiles for support",
        slug: "shopify-customer-profiles-for-support",
        tagline: "Give your help desk each Shopify customer's order count and spend.",
        description: r#"## Context before the first reply

A customer who has ordered twenty times deserves a different answer from a first-time buyer. This sync keeps a profile per Shopify customer for your support tools to show beside each ticket.

- Name and email
- Number of orders and lifetime spend
- Shopify tags, such as `vip` or `wholesale`"#,
        categories: &["support", "e-commerce"],
        source: ("shopify", &["customers"]),
        destination: ("patchbay", "customer_profiles"),
        mapping: &[
            ("email", "email"),
            ("first_name", "first_name"),
            ("last_name", "last_name"),
            ("orders_count", "orders_count"),
            ("lifetime_spend", "total_spent"),
            ("tags", "tags"),
        ],
        config: &[],
        schedule: ("6h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "GitHub issues support queue",
        slug: "github-issues-support-queue",
        tagline: "Customer-reported GitHub issues, as a queue your support team can work.",
        description: r#"## Close the loop with customers

Engineers live in GitHub; support lives elsewhere. This listing copies issues with a chosen label into a **support tickets** collection, so support can tell customers when their bug is fixed.

- Issue number, title, body and status
- Who reported it and when
- Label of your choice, `customer-reported` by default"#,
        categories: &["support", "developer-tools"],
        source: ("github", &["issues"]),
        destination: ("patchbay", "support_tickets"),
        mapping: &[
            ("ticket", "number"),
            ("subject", "title"),
            ("status", "state"),
            ("reporter", "user.login"),
            ("opened_at", "created_at"),
            ("body", "body"),
        ],
        config: &[Config {
            key: "label",
            kind: "text",
            label: "Label",
            help: "Issues with this label become tickets.",
            required: true,
            default: "customer-reported",
        }],
        schedule: ("15m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "GitHub pull request digest",
        slug: "github-pull-request-digest",
        tagline: "A daily digest of the pull requests in your repository.",
        description: r#"## Review what matters, once a day

GitHub lists pull requests among a repository's issues. This digest keeps just those, with their authors and merge times, so your morning stand-up starts from one list.

- Number, title and author
- Open, closed or merged, and when
- A link to each pull request"#,
        categories: &["developer-tools", "productivity"],
        source: ("github", &["issues"]),
        destination: ("patchbay", "pull_requests"),
        mapping: &[
            ("number", "number"),
            ("title", "title"),
            ("author", "user.login"),
            ("state", "state"),
            ("merged_at", "pull_request.merged_at"),
            ("url", "pull_request.html_url"),
        ],
        config: &[],
        schedule: ("24h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Salesforce contacts → HubSpot",
        slug: "salesforce-contacts-to-hubspot",
        tagline: "Hand Salesforce contacts to marketing in HubSpot, automatically.",
        description: r#"## One contact list for sales and marketing

Sales owns the contacts in Salesforce; marketing emails from HubSpot. This sync copies Salesforce contacts into HubSpot every few hours, matched by email.

- First name, last name and email
- The Salesforce account id, kept as a HubSpot property

Contacts deleted in Salesforce are left alone in HubSpot: nothing is ever removed."#,
        categories: &["crm", "marketing"],
        source: ("salesforce", &["contacts"]),
        destination: ("hubspot", "contacts"),
        mapping: &[
            ("email", "Email"),
            ("firstname", "FirstName"),
            ("lastname", "LastName"),
            ("salesforce_account_id", "AccountId"),
        ],
        config: &[],
        schedule: ("6h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Salesforce address book",
        slug: "salesforce-address-book",
        tagline: "Your Salesforce contacts as a shared address book.",
        description: r#"## Find anyone's email without opening Salesforce

Keep an **address book** collection of your Salesforce contacts, for the people in your company who need an email address but not a Salesforce seat.

- First and last name, email
- The account each contact belongs to
- Refreshed daily, or hourly if you prefer"#,
        categories: &["productivity", "crm"],
        source: ("salesforce", &["contacts"]),
        destination: ("patchbay", "address_book"),
        mapping: &[
            ("first_name", "FirstName"),
            ("last_name", "LastName"),
            ("email", "Email"),
            ("account_id", "AccountId"),
            ("modified_at", "LastModifiedDate"),
        ],
        config: &[],
        schedule: ("24h", &["1h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Stripe revenue analytics",
        slug: "stripe-revenue-analytics",
        tagline: "Every Stripe charge, ready to chart revenue by day, currency or status.",
        description: r#"## Revenue numbers you can trust

Charges are the raw material of revenue reporting. This sync copies each Stripe charge with its amount, currency and outcome, so your BI tool can sum them however finance asks.

- Amount in the smallest currency unit, with the currency
- Paid and refunded flags
- When the charge was created (Unix time)"#,
        categories: &["analytics", "payments"],
        source: ("stripe", &["charges"]),
        destination: ("patchbay", "revenue"),
        mapping: &[
            ("charge_id", "id"),
            ("amount_cents", "amount"),
            ("currency", "currency"),
            ("paid", "paid"),
            ("refunded", "refunded"),
            ("charged_at", "created"),
        ],
        config: &[],
        schedule: ("6h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Stripe dunning worklist",
        slug: "stripe-dunning-worklist",
        tagline: "A daily to-do list of overdue Stripe invoices to chase.",
        description: r#"## Chase late payments before they become churn

Each morning, the worklist holds the open Stripe invoices past their due date, with the amount still owed. Work through it from top to bottom.

- Invoice number and customer
- Amount due and due date
- Only invoices overdue by at least the days you choose"#,
        categories: &["payments", "support", "productivity"],
        source: ("stripe", &["invoices"]),
        destination: ("patchbay", "dunning"),
        mapping: &[
            ("invoice_number", "number"),
            ("customer_id", "customer"),
            ("amount_due", "amount_due"),
            ("due_date", "due_date"),
            ("status", "status"),
        ],
        config: &[Config {
            key: "days_overdue",
            kind: "number",
            label: "Days overdue",
            help: "Invoices overdue by fewer days are left off the list.",
            required: true,
            default: "7",
        }],
        schedule: ("24h", &["6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Stripe customers → Sandbox CRM",
        slug: "stripe-customers-to-sandbox-crm",
        tagline: "Add your Stripe customers to Sandbox CRM as contacts.",
        description: r#"## Billing contacts in your CRM

Each Stripe customer becomes a contact in Sandbox CRM with their name, email and phone, so account managers know who pays.

- Matched by email: no duplicates
- Updated when the customer changes their details in Stripe"#,
        categories: &["payments", "crm"],
        source: ("stripe", &["customers"]),
        destination: ("sandbox-crm", "contacts"),
        mapping: &[("email", "email"), ("name", "name"), ("phone", "phone")],
        config: &[],
        schedule: ("1h", &["15m", "1h", "6h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "HubSpot contacts → Sandbox Shop",
        slug: "hubspot-contacts-to-sandbox-shop",
        tagline: "Invite HubSpot leads to the demo shop as customers.",
        description: r#"## Leads become shoppers

Copy HubSpot contacts into Sandbox Shop as customer accounts, so a campaign's leads can check out without signing up again.

- Email, first and last name
- Runs hourly, or on demand before a campaign goes out"#,
        categories: &["marketing", "e-commerce"],
        source: ("hubspot", &["contacts"]),
        destination: ("sandbox-shop", "customers"),
        mapping: &[
            ("email", "properties.email"),
            ("first_name", "properties.firstname"),
            ("last_name", "properties.lastname"),
        ],
        config: &[],
        schedule: ("1h", &["15m", "1h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Sandbox Shop customers → HubSpot",
        slug: "sandbox-shop-customers-to-hubspot",
        tagline: "Demo shop customers, added to HubSpot with their sign-up date.",
        description: r#"## Nurture new customers from day one

New Sandbox Shop customers are added to HubSpot with their shop id and the day they signed up, ready for a welcome sequence.

- Email, first and last name
- Shop customer id and sign-up date as HubSpot properties
- A lifecycle stage of your choice, `customer` by default"#,
        categories: &["marketing", "e-commerce"],
        source: ("sandbox-shop", &["customers"]),
        destination: ("hubspot", "contacts"),
        mapping: &[
            ("email", "email"),
            ("firstname", "first_name"),
            ("lastname", "last_name"),
            ("shop_customer_id", "id"),
            ("shop_signup_date", "created_at"),
        ],
        config: &[Config {
            key: "lifecycle_stage",
            kind: "text",
            label: "Lifecycle stage",
            help: "The HubSpot lifecycle stage given to new contacts.",
            required: false,
            default: "customer",
        }],
        schedule: ("15m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Sandbox Shop order lookup",
        slug: "sandbox-shop-order-lookup",
        tagline: "Let support look up any demo shop order by customer.",
        description: r#"## "Where is my order?", answered

Keep the status of every Sandbox Shop order where your support team can find it, updated the moment it changes.

- Order and customer ids
- Status (pending, paid, fulfilled, refunded or cancelled) and total
- Last change, so agents know how fresh the status is"#,
        categories: &["support", "e-commerce"],
        source: ("sandbox-shop", &["orders"]),
        destination: ("patchbay", "order_lookup"),
        mapping: &[
            ("order_id", "id"),
            ("customer_id", "customer_id"),
            ("status", "status"),
            ("total_cents", "total_cents"),
            ("updated_at", "updated_at"),
        ],
        config: &[],
        schedule: ("5m", &["5m", "15m"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "GitHub issue metrics",
        slug: "github-issue-metrics",
        tagline: "Measure how fast your team closes GitHub issues.",
        description: r#"## Cycle time, without a plugin

Opened and closed times of every issue, with labels and assignees, so you can chart time to close per label or per person.

- Open and close timestamps
- Labels and assignees
- Refreshed once a day

Combine it with your release calendar to see which weeks the backlog grew."#,
        categories: &["analytics", "developer-tools"],
        source: ("github", &["issues"]),
        destination: ("patchbay", "issue_metrics"),
        mapping: &[
            ("number", "number"),
            ("state", "state"),
            ("labels", "labels"),
            ("assignees", "assignees"),
            ("opened_at", "created_at"),
            ("closed_at", "closed_at"),
        ],
        config: &[],
        schedule: ("24h", &["6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &BLUEBIRD,
        stage: Published,
        name: "Stripe billing contacts",
        slug: "stripe-billing-contacts",
        tagline: "Who to call about a bill: Stripe customers as a contact list.",
        description: r#"## The right person for every invoice

A contact list of your Stripe customers, with their billing city and currency, for account managers and the finance team.

- Name, email and phone
- Billing city and currency"#,
        categories: &["productivity", "payments"],
        source: ("stripe", &["customers"]),
        destination: ("patchbay", "billing_contacts"),
        mapping: &[
            ("customer_id", "id"),
            ("name", "name"),
            ("email", "email"),
            ("phone", "phone"),
            ("city", "address.city"),
            ("currency", "currency"),
        ],
        config: &[],
        schedule: ("24h", &["6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Published,
        name: "Shopify fulfillment board",
        slug: "shopify-fulfillment-board",
        tagline: "A live board of Shopify orders waiting to ship.",
        description: r#"## Pack, ship, repeat

The warehouse sees every paid order that still needs shipping, with its line items, updated by Shopify webhooks as orders come in and go out.

- Order name and buyer email
- Line items to pick
- Payment and fulfillment status"#,
        categories: &["e-commerce", "productivity"],
        source: ("shopify", &["orders"]),
        destination: ("patchbay", "fulfillment"),
        mapping: &[
            ("order_name", "name"),
            ("email", "email"),
            ("items", "line_items"),
            ("financial_status", "financial_status"),
            ("fulfillment_status", "fulfillment_status"),
            ("updated_at", "updated_at"),
        ],
        config: &[],
        schedule: ("5m", &["5m", "15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: InReview,
        name: "Shopify customers → Sandbox Shop",
        slug: "shopify-customers-to-sandbox-shop",
        tagline: "Rehearse a store migration: copy Shopify customers into the demo shop.",
        description: r#"## Migrate with a safety net

Before moving stores, copy your Shopify customers into Sandbox Shop and check that nothing is lost on the way.

- Email, first and last name
- Kept current by Shopify webhooks until you switch over"#,
        categories: &["e-commerce", "marketing"],
        source: ("shopify", &["customers"]),
        destination: ("sandbox-shop", "customers"),
        mapping: &[
            ("email", "email"),
            ("first_name", "first_name"),
            ("last_name", "last_name"),
        ],
        config: &[],
        schedule: ("1h", &["15m", "1h"]),
        triggers: &["schedule", "webhook", "manual"],
    },
    DemoListing {
        vendor: &NORTHWIND,
        stage: Draft,
        name: "HubSpot companies → Sandbox CRM",
        slug: "hubspot-companies-to-sandbox-crm",
        tagline: "Mirror HubSpot companies into Sandbox CRM.",
        description: r#"## Work in progress

Copies HubSpot companies into Sandbox CRM, matched by domain.

- Company name and domain
- Industry to follow, once Sandbox CRM has a field for it"#,
        categories: &["crm"],
        source: ("hubspot", &["companies"]),
        destination: ("sandbox-crm", "companies"),
        mapping: &[("name", "properties.name"), ("domain", "properties.domain")],
        config: &[],
        schedule: ("6h", &["1h", "6h", "24h"]),
        triggers: &["schedule", "manual"],
    },
];
