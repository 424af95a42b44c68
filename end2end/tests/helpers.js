// Shared steps. With JavaScript on, wait for hydration before clicking: the app sets
// body[data-hydrated] once the browser has taken over the server-rendered page.
const { expect } = require("@playwright/test");

async function ready(page, testInfo) {
  if (testInfo.project.use.javaScriptEnabled !== false) {
    await page.locator("body[data-hydrated]").waitFor();
  }
}

async function visit(page, testInfo, path) {
  await page.goto(path);
  await ready(page, testInfo);
}

function uniqueEmail(testInfo, who) {
  const stamp = `${Date.now()}${Math.floor(Math.random() * 1e6)}`;
  return `${who}.${testInfo.project.name}.${stamp}@example.com`;
}

const PASSWORD = "correct horse battery";

async function signUp(page, testInfo, name, email) {
  await visit(page, testInfo, "/signup");
  await page.getByLabel("Your name").fill(name);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign up" }).click();
  await expect(page.getByRole("heading", { name: `Hello, ${name.split(" ")[0]}` })).toBeVisible();
  await ready(page, testInfo);
}

async function createOrg(page, testInfo, name, kind) {
  await visit(page, testInfo, "/orgs/new");
  await page.getByLabel("Name").fill(name);
  await page.getByLabel(kind === "vendor" ? /Vendor/ : /Customer/).check();
  await page.getByRole("button", { name: "Create organization" }).click();
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  await ready(page, testInfo);
}

module.exports = { ready, visit, uniqueEmail, signUp, createOrg, PASSWORD };
