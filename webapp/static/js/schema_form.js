// A form generated from a JSON Schema (as pydantic writes it): one field per
// property, with its type, default, bounds and whether it is required.
//
// buildFields(schema, container, idPrefix?, options?) -> {collect(): {values, errors}, showErrors(list), clearErrors()}
// options: legend ("Input"), empty (the text for a schema without properties), and
// errorPrefix ("input"): the server names a field `<errorPrefix>.<name>` (the submit
// page's `input.text`, a question's `answer.approve`).
import { clear, el, pretty } from "./dom.js";

function resolve(schema, defs) {
  let s = schema || {};
  for (let i = 0; i < 5 && s.$ref; i++) {
    const name = String(s.$ref).split("/").pop();
    s = { ...(defs[name] || {}), ...s, $ref: undefined };
  }
  let nullable = false;
  const union = s.anyOf || s.oneOf;
  if (Array.isArray(union)) {
    const real = union.filter((b) => b && b.type !== "null");
    nullable = real.length < union.length;
    if (real.length === 1) s = { ...resolve(real[0], defs).schema, ...s, anyOf: undefined, oneOf: undefined };
    else s = { ...s, type: "json" };
  }
  if (Array.isArray(s.allOf) && s.allOf.length === 1) s = { ...resolve(s.allOf[0], defs).schema, ...s, allOf: undefined };
  if (Array.isArray(s.type)) {
    const real = s.type.filter((t) => t !== "null");
    nullable = nullable || real.length < s.type.length;
    s = { ...s, type: real.length === 1 ? real[0] : "json" };
  }
  return { schema: s, nullable };
}

function kindOf(s) {
  if (Array.isArray(s.enum)) return "enum";
  if (s.const !== undefined) return "enum";
  switch (s.type) {
    case "string":
      return "string";
    case "integer":
      return "integer";
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    default:
      return "json"; // objects, arrays, unions: edited as JSON text
  }
}

export function buildFields(schema, container, idPrefix = "in", options = {}) {
  const { legend = "Input", empty = "This agent takes no input.", errorPrefix = "input" } = options;
  const defs = schema.$defs || schema.definitions || {};
  const required = new Set(schema.required || []);
  const props = schema.properties || {};
  const fields = [];
  clear(container);
  container.append(el("legend", {}, legend));
  if (!Object.keys(props).length) {
    container.append(el("p", { class: "muted" }, empty));
  }
  // Required fields first, then the rest in the schema's order.
  const ordered = Object.entries(props).sort(([a], [b]) => Number(required.has(b)) - Number(required.has(a)));
  for (const [name, raw] of ordered) {
    const { schema: s, nullable } = resolve(raw, defs);
    const kind = kindOf(s);
    const id = `${idPrefix}-${name}`;
    const errId = `${id}-error`;
    const hintId = `${id}-hint`;
    const isRequired = required.has(name);
    const hasDefault = Object.prototype.hasOwnProperty.call(s, "default") || Object.prototype.hasOwnProperty.call(raw, "default");
    const dflt = raw.default !== undefined ? raw.default : s.default;
    const describedBy = [s.description ? hintId : null, errId].filter(Boolean).join(" ");
    let input;
    const common = { id, name, "aria-describedby": describedBy, "aria-required": isRequired ? "true" : null, "data-kind": kind };
    if (kind === "enum") {
      const options = s.enum || [s.const];
      input = el("select", common,
        !isRequired || nullable ? el("option", { value: "" }, isRequired ? "choose…" : "(default)") : null,
        options.map((v, i) => el("option", { value: String(i) }, String(v))));
      input._options = options;
      if (hasDefault) {
        const at = options.findIndex((v) => v === dflt);
        if (at >= 0) input.value = String(at);
      }
    } else if (kind === "boolean") {
      input = el("input", { ...common, type: "checkbox" });
      input.checked = Boolean(dflt);
    } else if (kind === "integer" || kind === "number") {
      input = el("input", {
        ...common,
        type: "number",
        step: kind === "integer" ? "1" : "any",
        inputmode: kind === "integer" ? "numeric" : "decimal",
        min: s.minimum ?? s.exclusiveMinimum ?? null,
        max: s.maximum ?? s.exclusiveMaximum ?? null,
      });
      if (hasDefault && dflt !== null) input.value = String(dflt);
    } else if (kind === "string") {
      const short = typeof s.maxLength === "number" && s.maxLength <= 120;
      input = short
        ? el("input", { ...common, type: "text", maxlength: s.maxLength, autocomplete: "off" })
        : el("textarea", { ...common, rows: 3, maxlength: s.maxLength ?? null, spellcheck: "false" });
      if (hasDefault && dflt !== null) input.value = String(dflt);
    } else {
      input = el("textarea", { ...common, rows: 4, class: "mono", spellcheck: "false", placeholder: "JSON" });
      if (hasDefault) input.value = pretty(dflt);
    }
    const label = el("label", { for: id }, s.title || raw.title || name, " ",
      el("code", { class: "small muted" }, name),
      isRequired ? el("span", { class: "req" }, " required") : hasDefault ? el("span", { class: "muted small" }, ` default ${JSON.stringify(dflt)}`) : el("span", { class: "muted small" }, " optional"));
    const typeNote = kind === "json" ? "JSON" : kind;
    const field = el("div", { class: `field field-${kind}`, dataset: { field: name } },
      kind === "boolean" ? el("div", { class: "check" }, input, label) : [label, input],
      s.description ? el("p", { id: hintId, class: "hint muted" }, s.description) : null,
      el("p", { id: errId, class: "field-error", hidden: true }),
      el("span", { class: "sr-only" }, typeNote));
    container.append(field);
    fields.push({ name, kind, input, isRequired, nullable, errorNode: field.querySelector(".field-error"), field });
  }

  function collect() {
    const values = {};
    const errors = [];
    for (const f of fields) {
      const v = f.input.value;
      switch (f.kind) {
        case "boolean":
          values[f.name] = f.input.checked;
          break;
        case "enum":
          if (v !== "") values[f.name] = f.input._options[Number(v)];
          break;
        case "integer":
        case "number": {
          if (v.trim() === "") {
            if (f.input.validity && f.input.validity.badInput) errors.push({ field: f.name, message: "Enter a number." });
            break;
          }
          const n = Number(v);
          values[f.name] = Number.isFinite(n) ? n : v;
          break;
        }
        case "string":
          if (v !== "" || f.isRequired) {
            if (v !== "") values[f.name] = v;
          }
          break;
        default:
          if (v.trim() === "") break;
          try {
            values[f.name] = JSON.parse(v);
          } catch {
            errors.push({ field: f.name, message: "Not valid JSON." });
          }
      }
    }
    return { values, errors };
  }

  function clearErrors() {
    for (const f of fields) {
      f.errorNode.hidden = true;
      f.errorNode.textContent = "";
      f.input.removeAttribute("aria-invalid");
      f.field.classList.remove("invalid");
    }
  }

  /** The top-level field an error names: `input.text` is `text`; a missing required
   * property is named by its parent (`answer`), with the property in the message. */
  function fieldOf(err) {
    const field = String(err.field || "");
    const missing = /^'([^']+)' is a required property/.exec(String(err.message || ""));
    if (missing && (field === errorPrefix || field === "")) return missing[1];
    return field.startsWith(`${errorPrefix}.`) ? field.slice(errorPrefix.length + 1).split(".")[0] : field.split(".")[0];
  }

  /** Show errors at their fields; returns those that match no field. */
  function showErrors(list) {
    const unmatched = [];
    let first = null;
    for (const err of list) {
      const top = fieldOf(err);
      const f = fields.find((x) => x.name === top);
      if (!f) {
        unmatched.push(err);
        continue;
      }
      const msg = f.errorNode.textContent ? `${f.errorNode.textContent} ${err.message}` : String(err.message);
      f.errorNode.textContent = msg;
      f.errorNode.hidden = false;
      f.input.setAttribute("aria-invalid", "true");
      f.field.classList.add("invalid");
      first = first || f;
    }
    if (first) first.input.focus();
    return unmatched;
  }

  return { collect, clearErrors, showErrors, fields };
}
