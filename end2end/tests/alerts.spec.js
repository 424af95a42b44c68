// Alerts: a platform admin adds a rule from the console's form (a bad webhook URL is refused
// beside its field, with what was typed kept), sees it listed with its signing secret, turns it
// off and deletes it. Customers get the 403 page.
const { test, expect } = require("@playwright/test");
const { execFileSync } = require("node:child_process");
const { ready, visit, uniqueEmail, signUp, failOnPageProblems } = require("./helpers");

failOnPageProblems(test, expect);

function grantAdmin(email) {
  execFileSync(process.env.E2E_PATCHBAY, ["admin", "grant", email], {
    env: { ...process.env, DATABASE_URL: process.env.E2E_DATABASE_URL },
  });
}

test("an admin adds, turns off and deletes an alert rule", async ({ page, browser }, testInfo) => {
  const js = testInfo.project.use.javaScriptEnabled !== false;
  const name = `Paging ${testInfo.project.name} ${Date.now() % 100000}`;
  const adminEmail = uniqueEmail(testInfo, "alerts-admin");
  await signUp(page, testInfo, "Alma Alerts", adminEmail);
  grantAdmin(adminEmail);
  await visit(page, testInfo, "/admin/alerts");
  await expect(page.getByRole("heading", { level: 1, name: "Alerts" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Alerts" })).toHaveAttribute("aria-current", "page");

  // A webhook URL into a private network is refused, beside its field.
  const form = page.locator("form#new-rule");
  await form.getByLabel("Name").fill(name);
  await form.getByLabel("Alert when").selectOption("dead_letters");
  await form.getByLabel("More than (dead letters)").fill("5");
  await form.getByLabel("In the last (minutes)").fill("30");
  await form.getByLabel("Webhook URL (optional)").fill("http://169.254.169.254/latest/meta-data");
  await form.getByRole("button", { name: "Add rule" }).click();
  await expect(page.locator("#webhook_url-error")).toContainText("private or reserved network");
  await ready(page, testInfo);

  // A public receiver is accepted; the rule is listed with its condition and its secret.
  const again = page.locator("form#new-rule");
  if (!js) await again.getByLabel("Name").fill(name);
  else await expect(again.getByLabel("Name")).toHaveValue(name);
  await again.getByLabel("Alert when").selectOption("dead_letters");
  await again.getByLabel("More than (dead letters)").fill("5");
  await again.getByLabel("In the last (minutes)").fill("30");
  await again.getByLabel("Webhook URL (optional)").fill("https://hooks.example.com/patchbay");
  await again.getByRole("button", { name: "Add rule" }).click();
  await expect(page).toHaveURL(/done=created/);
  await ready(page, testInfo);
  const row = page.locator("table.alert-rules tr", { hasText: name });
  await expect(row).toContainText("More than 5 dead letters in the last 30 minutes");
  await expect(row).toContainText("https://hooks.example.com/patchbay");
  await row.getByText("Signing secret").click();
  await expect(row.locator("[data-secret]")).toContainText(/^pbsec_[A-Za-z0-9_-]{43}$/);

  // Off, then gone.
  await row.locator('button[data-action="disable"]').click();
  await expect(page).toHaveURL(/done=disable/);
  await ready(page, testInfo);
  await expect(page.locator("table.alert-rules tr", { hasText: name })).toContainText("Off");
  const off = page.locator("table.alert-rules tr", { hasText: name });
  await off.locator("summary", { hasText: "Delete" }).click();
  await off.locator('button[data-action="delete"]').click();
  await expect(page).toHaveURL(/done=delete/);
  await ready(page, testInfo);
  await expect(page.locator("table.alert-rules tr", { hasText: name })).toHaveCount(0);

  // A customer is not let in.
  const other = await browser.newContext({ javaScriptEnabled: js });
  const customer = await other.newPage();
  await signUp(customer, testInfo, "Cy Customer", uniqueEmail(testInfo, "alerts-customer"));
  const res = await customer.goto("/admin/alerts");
  expect(res.status()).toBe(403);
  await other.close();
});
