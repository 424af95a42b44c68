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

// Fails the test on any script error, failed hydration or CSP violation in the page. (A 4xx answer
// to a refused form is expected: the browser logs it, and the page shows the message.)
function failOnPageProblems(test, expect) {
  let problems = [];
  test.beforeEach(async ({ page }) => {
    problems = [];
    page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
    page.on("console", (msg) => {
      const expected = /^Failed to load resource: the server responded with a status of 4\d\d/;
      if (msg.type() === "error" && !expected.test(msg.text())) problems.push(`console error: ${msg.text()}`);
    });
  });
  test.afterEach(async () => {
    expect(problems, problems.join("\n")).toEqual([]);
  });
}

module.exports = { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems, PASSWORD };
