// Installing a demo listing built on the bundled sandbox apps: the wizard, the first sync's live
// progress, a change in Sandbox Shop arriving through its webhook, pause, resume and uninstall.
const { test, expect } = require("@playwright/test");
const { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems } = require("./helpers");

failOnPageProblems(test, expect);

const SANDBOX = process.env.E2E_SANDBOX_URL || "http://127.0.0.1:3101";
// Sandbox Shop customers → Sandbox CRM contacts, on a schedule, by webhook and by hand.
const LISTING = "sandbox-shop-customers-to-sandbox-crm";

async function approve(page) {
  await expect(page).toHaveURL(new RegExp(`^${SANDBOX}/oauth/authorize`));
  await page.getByRole("button", { name: "Approve" }).click();
}

// With JavaScript the install page refreshes itself; without, the test reloads it, as a person
// would.
async function until(page, testInfo, check, timeout = 40_000) {
  const js = testInfo.project.use.javaScriptEnabled !== false;
  await expect(async () => {
    if (!js) await page.reload();
    await check();
  }).toPass({ timeout, intervals: [500, 1000] });
}

test("a customer installs a sandbox listing and watches it sync, by webhook too", async ({ page }, testInfo) => {
  test.setTimeout(150_000);
  const js = testInfo.project.use.javaScriptEnabled !== false;
  await signUp(page, testInfo, "Ivy Installer", uniqueEmail(testInfo, "ivy"));
  await createOrg(page, testInfo, "Ivy Co", "customer");

  // From the listing into the wizard.
  await visit(page, testInfo, `/marketplace/${LISTING}`);
  await page.getByRole("link", { name: "Install", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: /^Install Sandbox Shop customers/ })).toBeVisible();
  await expect(page.getByText("Step 1 of 6")).toBeVisible();
  await ready(page, testInfo);

  // Step 1: connect both sandbox accounts without leaving the wizard.
  await page.getByRole("button", { name: "Connect Sandbox Shop" }).click();
  await approve(page);
  await expect(page).toHaveURL(new RegExp(`/installs/new/${LISTING}\\?connected=`));
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Connect Sandbox CRM" }).click();
  await approve(page);
  await expect(page).toHaveURL(/connected=/);
  await ready(page, testInfo);
  await expect(page.locator('fieldset[data-role="source"] input[type=radio]:checked')).toHaveCount(1);
  await expect(page.locator('fieldset[data-role="destination"] input[type=radio]:checked')).toHaveCount(1);
  await page.getByRole("button", { name: "Save and continue" }).click();

  // Steps 2–5 keep the listing's defaults; the mapping shows them.
  for (const step of ["settings", "streams", "mapping", "schedule"]) {
    await expect(page).toHaveURL(new RegExp(`/setup/${step}$`));
    await ready(page, testInfo);
    if (step === "mapping") {
      await expect(page.locator("#map-to-0")).toHaveValue("email");
      await expect(page.locator("#map-from-1")).toHaveValue("first_name");
    }
    if (step === "schedule") {
      await expect(page.getByLabel("When the source sends a webhook")).toBeChecked();
    }
    await page.getByRole("button", { name: "Save and continue" }).click();
  }
  await expect(page).toHaveURL(/\/setup\/review$/);
  await expect(page.getByText("Every 5 minutes")).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Install and start the first sync" }).click();

  // The install page: the first sync runs, and its counters move.
  await expect(page).toHaveURL(/\/installs\/[0-9a-f-]+\?installed=1$/);
  const installUrl = page.url().replace(/\?.*$/, "");
  await expect(page.getByText("Installed. The first sync is on its way")).toBeVisible();
  await ready(page, testInfo);
  const written = page.locator('.progress-panel [data-stat="written"] dd');
  const count = async () => Number((await written.textContent()).replace(/,/g, ""));
  await until(page, testInfo, async () => {
    await expect(page.locator(".progress-panel[data-running]")).toBeVisible();
    expect(await count()).toBeGreaterThan(0);
  });
  // The counters move on while it runs (by themselves with JavaScript, on reload without).
  const partway = await count();
  await until(page, testInfo, async () => {
    const finished = await page.locator('.progress-panel [data-outcome="succeeded"]').count();
    expect(finished > 0 || (await count()) > partway).toBeTruthy();
  });
  await until(page, testInfo, async () => {
    await expect(page.locator('.progress-panel [data-outcome="succeeded"]').first()).toBeVisible();
  }, 60_000);
  await expect(page.locator(".timeline .event-finished")).toContainText(/Finished: \d+ read, \d+ written/);

  // A change in Sandbox Shop, made in its own pages, arrives by webhook.
  const name = `Webhooked ${Date.now() % 100000}`;
  await page.goto(`${SANDBOX}/app/customers/cus_000007`);
  await page.getByLabel("first_name").fill(name);
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page).toHaveURL(`${SANDBOX}/app/customers`);
  await page.goto(installUrl);
  await ready(page, testInfo);
  await until(page, testInfo, async () => {
    const latest = page.locator("tbody.run-group").first().locator("tr.attempt-latest");
    await expect(latest).toContainText("webhook");
    await expect(latest.locator('[data-outcome="succeeded"]')).toBeVisible();
  });
  await page.goto(`${SANDBOX}/app/contacts`);
  // (Every install of the demo writes to the one sandbox CRM: other customers' copies may show too.)
  await expect(page.getByRole("cell", { name, exact: true }).first()).toBeVisible();

  // Pause, resume, uninstall.
  await page.goto(installUrl);
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Pause", exact: true }).click();
  await expect(page.getByText("Paused. Nothing runs until you resume.")).toBeVisible();
  await expect(page.locator('header[data-status="paused"]')).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Resume", exact: true }).click();
  await expect(page.getByText("Resumed.")).toBeVisible();
  await expect(page.locator('header[data-status="active"]')).toBeVisible();
  await ready(page, testInfo);
  await page.locator("summary", { hasText: "Uninstall" }).click();
  await page.getByRole("button", { name: "Yes, uninstall" }).click();
  await expect(page.getByText("Uninstalled. Nothing runs any more")).toBeVisible();
  await expect(page.locator('header[data-status="uninstalled"]')).toBeVisible();
  await expect(page.getByRole("heading", { name: "History" })).toBeVisible();
  await expect(page.locator("tbody.run-group").first()).toBeVisible();
  if (js) await ready(page, testInfo);

  // The installs list no longer shows it.
  await visit(page, testInfo, "/installs");
  await expect(page.getByText("Nothing installed yet")).toBeVisible();
});
