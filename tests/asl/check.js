// AWS's own ASL language service (the engine of the AWS Toolkit's state machine
// editor) and asl-validator, on state machine definitions given as file paths.
// Prints every diagnostic; exits 1 if there is any.
"use strict";
const fs = require("fs");
const aslValidator = require("asl-validator");
const { getLanguageService, TextDocument } = require("amazon-states-language-service");

async function main(paths) {
  const service = getLanguageService({});
  let problems = 0;
  for (const path of paths) {
    const text = fs.readFileSync(path, "utf8");
    const { isValid, errorsText } = aslValidator(JSON.parse(text));
    if (!isValid) {
      problems += 1;
      console.log(`${path}: asl-validator: ${errorsText("; ")}`);
    }
    const document = TextDocument.create(`file:///${path}`, "json", 0, text);
    const diagnostics = await service.doValidation(document, service.parseJSONDocument(document), {
      comments: "error",
      trailingCommas: "error",
    });
    for (const d of diagnostics) {
      problems += 1;
      console.log(`${path}:${d.range.start.line + 1}: amazon-states-language-service: ${d.message}`);
    }
    console.log(`${path}: asl-validator ${isValid ? "valid" : "INVALID"}, language service ${diagnostics.length} diagnostics`);
  }
  process.exit(problems ? 1 : 0);
}

main(process.argv.slice(2)).catch((e) => {
  console.error(e);
  process.exit(2);
});
