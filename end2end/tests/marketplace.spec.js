// The marketplace end to end, once with JavaScript and once without: a vendor creates a listing
// and submits it; an admin rejects it with a note; the vendor fixes it and resubmits; the admin
// approves; a customer finds it by search and by category and opens its page.
const { test, expect } = require("@playwright/test");
const { execFileSync } = require("node:child_process");
const zlib = require("node:zlib");
const { ready, visit, uniqueEmail, signUp, createOrg, failOnPageProblems } = require("./helpers");

failOnPageProblems(test, expect);

// A real 32×32 PNG (one colour), so the logo upload goes through the content check.
function png() {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const body = Buffer.concat([Buffer.from(type), data]);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const size = 32;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // truecolour
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3, 0x4f)]);
  const pixels = zlib.deflateSync(Buffer.concat(Array(size).fill(row)));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", pixels),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

function grantAdmin(email) {
  execFileSync(process.env.E2E_PATCHBAY, ["admin", "grant", email], {
    env: { ...process.env, DATABASE_URL: process.env.E2E_DATABASE_URL },
  });
}

// Saves the editor and checks that this save (not an earlier one) succeeded: its request answers
// without error (a redirect back, without JavaScript) and no field reports a problem.
async function save(page, testInfo) {
  const answered = page.waitForResponse(
    (res) => res.url().includes("/api/vendor/listings/save") && res.request().method() === "POST",
  );
  await page.getByRole("button", { name: "Save draft" }).click();
  const res = await answered;
  expect(res.status()).toBeLessThan(400);
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  await ready(page, testInfo);
  await expect(page.locator(".field-error")).toHaveCount(0);
  expect(page.url()).not.toContain("__err");
}

test("a listing goes from draft through review to the catalog", async ({ browser, page }, testInfo) => {
  test.skip(!process.env.E2E_PATCHBAY, "needs E2E_PATCHBAY and E2E_DATABASE_URL (set by .ci/test)");
  const token = `Zephyr${Date.now().toString(36)}${testInfo.project.name === "javascript" ? "js" : "nojs"}`;
  const name = `${token} invoices`;

  // The vendor starts a listing.
  await signUp(page, testInfo, "Val Vendor", uniqueEmail(testInfo, "vendor"));
  await createOrg(page, testInfo, "Val Apps", "vendor");
  await visit(page, testInfo, "/vendor");
  await expect(page.getByText("No listings yet")).toBeVisible();
  await page.getByLabel("Name").fill(name);
  await page.getByRole("button", { name: "Create draft" }).click();
  await expect(page.getByRole("heading", { level: 1, name })).toBeVisible();
  await ready(page, testInfo);
  const editorUrl = page.url();

  // A logo, checked by its content.
  await page.locator("#logo").setInputFiles({ name: "logo.png", mimeType: "image/png", buffer: png() });
  await page.getByRole("button", { name: "Upload logo" }).click();
  await expect(page.getByRole("status").filter({ hasText: "Saved." })).toBeVisible();
  await expect(page.locator(".logo-row img.logo")).toBeVisible();
  await ready(page, testInfo);

  // Content and the source app; the app's streams show once chosen (after saving, without JS).
  await page.locator("#f-tagline").fill("Every invoice, where finance looks");
  await page.locator("#f-description").fill("## What it does\n\nCopies **contacts** into Patchbay.");
  await page.getByRole("checkbox", { name: "Payments" }).check();
  await page.getByLabel("Source app").selectOption("sandbox-crm");
  await save(page, testInfo);
  await page.getByRole("checkbox", { name: /^Contacts/ }).check();
  await page.locator("#f-destination_stream").fill("contacts");
  await page.getByLabel("Source field, row 1").fill("email");
  await page.getByLabel("Destination field, row 1").fill("email");
  await save(page, testInfo);
  // The preview shows the listing page as customers will see it.
  const preview = page.getByRole("complementary", { name: "Preview" });
  await expect(preview.getByRole("heading", { name: "What it does" })).toBeVisible();
  await expect(preview.getByText("Contacts", { exact: true })).toBeVisible();

  await page.getByRole("button", { name: "Submit for review" }).click();
  await expect(page.getByText("Submitted for review.")).toBeVisible();
  await ready(page, testInfo);

  // A platform admin rejects it with a note.
  const adminContext = await browser.newContext();
  const admin = await adminContext.newPage();
  const adminEmail = uniqueEmail(testInfo, "admin");
  await signUp(admin, testInfo, "Ada Admin", adminEmail);
  grantAdmin(adminEmail);
  await visit(admin, testInfo, "/admin/reviews");
  await admin.getByRole("link", { name }).click();
  await expect(admin.getByRole("heading", { level: 1, name })).toBeVisible();
  await ready(admin, testInfo);
  await admin.getByLabel("Notes for the vendor").fill("Please add a documentation link.");
  await admin.getByRole("button", { name: "Request changes" }).click();
  await expect(admin.getByText("Sent back to the vendor")).toBeVisible();
  await ready(admin, testInfo);

  // The vendor reads the note, fixes the listing and resubmits.
  await visit(page, testInfo, editorUrl);
  await expect(page.getByText("Please add a documentation link.").first()).toBeVisible();
  await page.locator("#f-docs_url").fill("https://docs.example.com/zephyr");
  await save(page, testInfo);
  await page.getByRole("button", { name: "Resubmit for review" }).click();
  await expect(page.getByText("Submitted for review.")).toBeVisible();

  // The admin approves.
  await visit(admin, testInfo, "/admin/reviews");
  await admin.getByRole("link", { name }).click();
  await expect(admin.getByRole("heading", { level: 1, name })).toBeVisible();
  await ready(admin, testInfo);
  await admin.getByRole("button", { name: "Approve and publish" }).click();
  await expect(admin.getByText("Approved: the version is live")).toBeVisible();
  await adminContext.close();

  // A customer finds it by search (the start of a word is enough) and by category.
  const customerContext = await browser.newContext();
  const customer = await customerContext.newPage();
  await signUp(customer, testInfo, "Cass Customer", uniqueEmail(testInfo, "customer"));
  await createOrg(customer, testInfo, "Cass Shop", "customer");
  await visit(customer, testInfo, "/marketplace");
  await customer.getByLabel("Search integrations").fill(token.slice(0, -3).toLowerCase());
  await customer.getByRole("button", { name: "Search" }).click();
  await expect(customer).toHaveURL(/\?q=/);
  await expect(customer.getByRole("link", { name })).toBeVisible();
  await ready(customer, testInfo);

  await visit(customer, testInfo, "/marketplace");
  await customer.getByRole("navigation", { name: "Categories" }).getByRole("link", { name: "Payments" }).click();
  await expect(customer).toHaveURL(/category=payments/);
  await expect(customer.getByRole("heading", { name: "Payments", level: 2 })).toBeVisible();
  await ready(customer, testInfo);
  await customer.getByRole("link", { name }).click();
  await expect(customer.getByRole("heading", { level: 1, name })).toBeVisible();
  await expect(customer.getByRole("heading", { name: "What syncs" })).toBeVisible();
  await expect(customer.getByRole("heading", { name: "Permissions requested" })).toBeVisible();
  await expect(customer.getByText("Read your contacts and companies")).toBeVisible();
  await expect(customer.getByRole("link", { name: "Documentation" })).toHaveAttribute("href", "https://docs.example.com/zephyr");
  await customerContext.close();
});
