// Connecting an account through the bundled sandbox's real OAuth server: a customer connects from a
// listing, the sandbox revokes the grant, the connection turns "needs reconnecting" at the next
// refresh attempt, and the customer reconnects, keeping the same connection.
const { test, expect } = require("@playwright/test");
const { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems } = require("./helpers");

failOnPageProblems(test, expect);

const SANDBOX = process.env.E2E_SANDBOX_URL || "http://127.0.0.1:3101";
// A published demo listing that reads Sandbox Shop and writes Sandbox CRM.
const LISTING = "sandbox-shop-customers-to-sandbox-crm";

async function setFaults(request, faults) {
  const res = await request.post(`${SANDBOX}/_sandbox/faults`, { data: faults });
  expect(res.ok()).toBeTruthy();
}

// On the sandbox's consent page: approve, and come back to Patchbay.
async function approveAtSandbox(page, testInfo) {
  await expect(page).toHaveURL(new RegExp(`^${SANDBOX}/oauth/authorize`));
  await expect(page.getByRole("heading", { name: "Patchbay wants to access your Sandbox account" })).toBeVisible();
  await page.getByRole("button", { name: "Approve" }).click();
}

test("a customer connects the sandbox from a listing, loses access, and reconnects", async ({ page, request }, testInfo) => {
  await signUp(page, testInfo, "Connie Customer", uniqueEmail(testInfo, "connie"));
  await createOrg(page, testInfo, "Connie Co", "customer");

  // From the listing to its connect page.
  await visit(page, testInfo, `/marketplace/${LISTING}`);
  await page.getByRole("link", { name: "Connect accounts", exact: true }).click();
  await expect(page.getByRole("heading", { level: 1, name: /Connect the accounts .* uses/ })).toBeVisible();
  await ready(page, testInfo);
  const crm = page.locator('section[data-provider="sandbox-crm"]');
  await expect(crm.getByText("Read your contacts and companies")).toBeVisible();

  // Sign in at the sandbox and come back connected.
  await crm.getByRole("button", { name: "Connect Sandbox CRM" }).click();
  await approveAtSandbox(page, testInfo);
  await expect(page).toHaveURL(new RegExp(`/marketplace/${LISTING}/connect\\?connected=`));
  await expect(page.getByText("Connected.", { exact: true })).toBeVisible();
  await expect(crm.getByText("Sandbox Demo Co")).toBeVisible();
  await expect(crm.getByText("Active")).toBeVisible();
  await ready(page, testInfo);

  // The connections page shows the account, its status and when it was connected.
  await visit(page, testInfo, "/connections");
  const item = page.locator("li.connection", { hasText: "Sandbox CRM" });
  await expect(item.getByRole("heading", { name: "Sandbox CRM · Sandbox Demo Co" })).toBeVisible();
  await expect(item).toHaveAttribute("data-status", "active");
  const id = await item.getAttribute("data-connection");

  // The sandbox revokes every token; the next refresh attempt (here: a check, whose call is refused
  // with 401, then a refresh refused with invalid_grant) marks the connection.
  await setFaults(request, { revoke_tokens: true });
  await setFaults(request, { revoke_tokens: false });
  await item.getByRole("button", { name: "Check connection" }).click();
  await expect(item).toHaveAttribute("data-status", "needs_reauth");
  await expect(item.getByText("Needs reconnecting")).toBeVisible();
  await expect(item.getByText(/no longer accepts this connection/)).toBeVisible();
  await ready(page, testInfo);

  // Reconnect: the same connection comes back active.
  await item.getByRole("link", { name: "Reconnect Sandbox CRM" }).click();
  await expect(page.getByRole("heading", { level: 1, name: "Reconnect Sandbox CRM" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("button", { name: "Reconnect Sandbox CRM" }).click();
  await approveAtSandbox(page, testInfo);
  await expect(page).toHaveURL(new RegExp(`/connections\\?connected=${id}`));
  await expect(page.getByText(/^Connected\./)).toBeVisible();
  const again = page.locator(`li.connection[data-connection="${id}"]`);
  await expect(again).toHaveAttribute("data-status", "active");
  await expect(page.locator("li.connection")).toHaveCount(1);
  await ready(page, testInfo);

  // Disconnect revokes at the sandbox and keeps the row, disconnected.
  await again.getByRole("button", { name: "Disconnect" }).click();
  await expect(page.getByText(/The provider revoked Patchbay's access/)).toBeVisible();
  await expect(page.locator(`li.connection[data-connection="${id}"]`)).toHaveAttribute("data-status", "revoked");
});

test("refusing at the provider ends on a clear page, and nothing is connected", async ({ page }, testInfo) => {
  await signUp(page, testInfo, "Dora Denier", uniqueEmail(testInfo, "dora"));
  await createOrg(page, testInfo, "Dora Co", "customer");
  await visit(page, testInfo, "/connections/new/sandbox-shop");
  await page.getByRole("button", { name: "Connect Sandbox Shop" }).click();
  await expect(page).toHaveURL(new RegExp(`^${SANDBOX}/oauth/authorize`));
  await page.getByRole("button", { name: "Deny" }).click();
  await expect(page).toHaveURL(/\/connect\/failed\?reason=denied/);
  await expect(page.getByRole("heading", { name: "You did not allow access" })).toBeVisible();
  await ready(page, testInfo);
  await page.getByRole("link", { name: "Your connections" }).click();
  await expect(page.getByText("No connections yet")).toBeVisible();
});
