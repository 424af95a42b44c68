// Admin operations: a customer's install starts failing because of a sandbox fault switch; a
// platform admin finds it on the failures dashboard, opens the run, reads the error and the
// events, flips the switch back, retries, and sees the run succeed. The health page's plots
// render as SVG with data points.
const { test, expect } = require("@playwright/test");
const { execFileSync } = require("node:child_process");
const { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems } = require("./helpers");

failOnPageProblems(test, expect);

const SANDBOX = process.env.E2E_SANDBOX_URL || "http://127.0.0.1:3101";
const LISTING = "sandbox-shop-customers-to-sandbox-crm";

function grantAdmin(email) {
  execFileSync(process.env.E2E_PATCHBAY, ["admin", "grant", email], {
    env: { ...process.env, DATABASE_URL: process.env.E2E_DATABASE_URL },
  });
}

async function setFaults(request, faults) {
  const res = await request.post(`${SANDBOX}/_sandbox/faults`, { data: faults });
  expect(res.ok()).toBeTruthy();
}

// With JavaScript pages refresh themselves; without, the test reloads, as a person would.
async function until(page, testInfo, check, timeout = 60_000) {
  const js = testInfo.project.use.javaScriptEnabled !== false;
  await expect(async () => {
    if (!js) await page.reload();
    await check();
  }).toPass({ timeout, intervals: [500, 1000] });
}

// A customer installs the sandbox listing with the wizard's defaults; returns the install's URL
// once its first sync succeeded.
async function install(page, testInfo, org) {
  await signUp(page, testInfo, "Fay Failing", uniqueEmail(testInfo, "fay"));
  await createOrg(page, testInfo, org, "customer");
  await visit(page, testInfo, `/marketplace/${LISTING}`);
  await page.getByRole("link", { name: "Install", exact: true }).click();
  await ready(page, testInfo);
  for (const app of ["Sandbox Shop", "Sandbox CRM"]) {
    await page.getByRole("button", { name: `Connect ${app}` }).click();
    await expect(page).toHaveURL(new RegExp(`^${SANDBOX}/oauth/authorize`));
    await page.getByRole("button", { name: "Approve" }).click();
    await expect(page).toHaveURL(/connected=/);
    await ready(page, testInfo);
  }
  await page.getByRole("button", { name: "Save and continue" }).click();
  for (const step of ["settings", "streams", "mapping", "schedule"]) {
    await expect(page).toHaveURL(new RegExp(`/setup/${step}$`));
    await ready(page, testInfo);
    await page.getByRole("button", { name: "Save and continue" }).click();
  }
  await expect(page).toHaveURL(/\/setup\/review$/);
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Install and start the first sync" }).click();
  await expect(page).toHaveURL(/\/installs\/[0-9a-f-]+\?installed=1$/);
  const url = page.url().replace(/\?.*$/, "");
  await ready(page, testInfo);
  await until(page, testInfo, async () => {
    await expect(page.locator('.progress-panel [data-outcome="succeeded"]').first()).toBeVisible();
  });
  return url;
}

test("an admin finds a failing install, reads the run, fixes the fault and retries", async ({ page, browser, request }, testInfo) => {
  test.setTimeout(240_000);
  const org = `Fay Co ${testInfo.project.name} ${Date.now() % 100000}`;
  const installUrl = await install(page, testInfo, org);

  // The sandbox starts failing; the customer's next sync fails (and keeps retrying).
  await setFaults(request, { fail_next: 100000 });
  try {
    await page.goto(installUrl);
    await ready(page, testInfo);
    await page.getByRole("button", { name: "Run now", exact: true }).click();
    await until(page, testInfo, async () => {
      await expect(page.locator("tbody.run-group").first().locator('[data-outcome="failed"]').first()).toBeVisible();
    });

    // A platform admin finds it on the dashboard, filtered to the customer's organization.
    const adminContext = await browser.newContext({ javaScriptEnabled: testInfo.project.use.javaScriptEnabled !== false });
    const admin = await adminContext.newPage();
    const adminEmail = uniqueEmail(testInfo, "admin");
    await signUp(admin, testInfo, "Ada Admin", adminEmail);
    grantAdmin(adminEmail);
    await visit(admin, testInfo, "/admin/failures");
    await expect(admin.getByRole("heading", { level: 1, name: "Failures" })).toBeVisible();
    await admin.getByLabel("Organization").selectOption({ label: org });
    await admin.getByRole("button", { name: "Apply" }).click();
    await expect(admin).toHaveURL(/tenant=/);
    await expect(admin.locator("table.failure-groups tbody tr").first()).toContainText("Temporary problem");
    await expect(admin.locator("table.failure-groups tbody tr").first()).toContainText("sandbox-shop");
    await admin.locator("table.failure-runs tbody tr").first().getByRole("link").first().click();

    // The run: its error, its events with the failed request's summary, its attempts.
    await expect(admin).toHaveURL(/\/admin\/runs\/\d+$/);
    await ready(admin, testInfo);
    await expect(admin.locator(".alert-panel")).toContainText("answered HTTP 5");
    await expect(admin.locator(".timeline .event-request").first()).toContainText("Request failed: GET http://127.0.0.1");
    await expect(admin.locator(".timeline .event-request code").first()).toContainText("/shop/");
    await expect(admin.locator("table.attempts tbody tr").first()).toBeVisible();

    // The admin retries. The job keeps retrying by itself meanwhile, so the page may offer a
    // retry of a job that has just started running again: Patchbay then refuses ("Nothing to
    // retry: the job runs now"), and the admin reloads and tries again.
    let retried = false;
    for (let i = 0; i < 30 && !retried; i++) {
      if (i > 0) {
        await admin.waitForTimeout(500);
        await admin.goto(admin.url().replace(/\?.*$/, ""));
      }
      await ready(admin, testInfo);
      const retry = admin.locator('button[data-action="retry"]');
      if ((await retry.count()) === 0) continue;
      await retry.click();
      // Done: the page moves to ?done=…; refused: the error shows (in the URL without JavaScript).
      const refused = admin.getByText("Nothing to retry");
      await expect(async () => {
        expect(/done=retry/.test(admin.url()) || (await refused.count()) > 0).toBeTruthy();
      }).toPass({ timeout: 10_000 });
      retried = /done=retry/.test(admin.url());
    }
    expect(retried).toBeTruthy();
    // The fault is fixed; the install's next run succeeds.
    await setFaults(request, { fail_next: 0 });
    await ready(admin, testInfo);
    await until(admin, testInfo, async () => {
      await expect(admin.locator('.newest-run [data-outcome="succeeded"]')).toBeVisible();
    });

    // The retry is in the audit log.
    await visit(admin, testInfo, "/admin/audit?q=admin.retry");
    await expect(admin.locator('table.audit-log tr[data-action="admin.retry"]').first()).toContainText(org);

    // The health page: four plots drawn on the server, each with a point per minute.
    await visit(admin, testInfo, "/admin/health");
    await expect(admin.locator("figure.plot svg")).toHaveCount(4);
    const points = await admin.locator('figure.plot[data-plot="runs"] polyline').first().getAttribute("points");
    expect(points.trim().split(/\s+/).length).toBe(60);
    await expect(admin.locator('[data-stat="workers"] dd')).not.toHaveText("0");
    await adminContext.close();
  } finally {
    await setFaults(request, { fail_next: 0 });
  }
});
