// Sign up, create organizations, switch between them, log out and back in — once with JavaScript
// and once without (the two Playwright projects).
const { test, expect } = require("@playwright/test");
const { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems, PASSWORD } = require("./helpers");

failOnPageProblems(test, expect);

test("sign up, create organizations, switch, log out, log in", async ({ page }, testInfo) => {
  const email = uniqueEmail(testInfo, "casey");
  await signUp(page, testInfo, "Casey Jones", email);
  await expect(page.getByText("You are not in an organization yet")).toBeVisible();

  await createOrg(page, testInfo, "Acme Outfitters", "customer");
  await expect(page.getByRole("cell", { name: email, exact: true })).toBeVisible();
  const nav = page.getByRole("navigation", { name: "Main" });
  await expect(nav.getByRole("link", { name: "My installs" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Vendor" })).toHaveCount(0);

  await createOrg(page, testInfo, "Casey Apps", "vendor");
  await expect(nav.getByRole("link", { name: "Vendor" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "My installs" })).toHaveCount(0);

  // Switch back to the customer organization from the header.
  const switcher = page.getByLabel("Active organization");
  await switcher.selectOption({ label: "Acme Outfitters (Customer)" });
  if (testInfo.project.use.javaScriptEnabled === false) {
    await page.getByRole("button", { name: "Switch" }).click();
  }
  await expect(nav.getByRole("link", { name: "My installs" })).toBeVisible();
  await expect(nav.getByRole("link", { name: "Vendor" })).toHaveCount(0);
  await ready(page, testInfo);
  await visit(page, testInfo, "/installs");
  await expect(page.getByRole("heading", { name: "My installs" })).toBeVisible();

  // Log out from the user menu.
  await page.getByLabel("Account menu").click();
  await page.getByRole("button", { name: "Log out" }).click();
  await expect(page).toHaveURL(/\/login$/);
  await expect(page.getByRole("link", { name: "Log in" })).toBeVisible();
  await ready(page, testInfo);

  // A wrong password is refused with a message beside the form.
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill("not my password");
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("alert")).toContainText("do not match an account");
  await ready(page, testInfo);

  // Log in again: the organizations are still there.
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await expect(page.getByRole("heading", { name: "Hello, Casey" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Acme Outfitters" })).toBeVisible();
  await expect(page.getByRole("link", { name: "Casey Apps" })).toBeVisible();
});

test("sign-up errors sit beside their fields", async ({ page }, testInfo) => {
  await visit(page, testInfo, "/signup");
  await page.getByLabel("Your name").fill("Short Password");
  await page.getByLabel("Email").fill(uniqueEmail(testInfo, "short"));
  await page.getByLabel("Password").fill("short");
  const js = testInfo.project.use.javaScriptEnabled !== false;
  if (js) await page.evaluate(() => (window.__samePage = true));
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page.locator("#password-error")).toHaveText("Use at least 10 characters.");
  await expect(page.getByLabel("Password")).toHaveAttribute("aria-invalid", "true");
  if (js) {
    // With JavaScript the form was sent by the hydrated app, without a page load.
    expect(await page.evaluate(() => window.__samePage)).toBe(true);
  } else {
    // Without it, the browser posted the form and came back to the page with the error.
    await expect(page).toHaveURL(/\/signup\?.*__err=/);
  }
});

test("an owner adds a member and changes their role", async ({ page, browser }, testInfo) => {
  const memberEmail = uniqueEmail(testInfo, "mia");
  const other = await browser.newPage();
  await signUp(other, testInfo, "Mia Member", memberEmail);
  await other.close();

  await signUp(page, testInfo, "Olive Owner", uniqueEmail(testInfo, "olive"));
  await createOrg(page, testInfo, "Olive Co", "customer");
  await page.getByLabel("Email").fill(memberEmail);
  await page.getByLabel("Role", { exact: true }).selectOption("member");
  await page.getByRole("button", { name: "Add member" }).click();
  await expect(page.getByRole("cell", { name: memberEmail, exact: true })).toBeVisible();
  await expect(page.getByRole("heading", { name: "Members (2)" })).toBeVisible();
  await ready(page, testInfo);

  const roleSelect = page.getByLabel(`Role of ${memberEmail}`);
  await roleSelect.selectOption("admin");
  await page.getByRole("row", { name: new RegExp(memberEmail) }).getByRole("button", { name: "Save" }).click();
  await expect(page.getByLabel(`Role of ${memberEmail}`)).toHaveValue("admin");

  // The last owner cannot leave: the refusal is explained.
  await ready(page, testInfo);
  const ownRow = page.getByRole("row", { name: /Olive Owner/ });
  await ownRow.getByText("Leave", { exact: true }).click();
  await ownRow.getByRole("button", { name: "Yes, leave" }).click();
  await expect(page.getByRole("alert")).toContainText("last owner");
});
