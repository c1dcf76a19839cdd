/**
 * @module Renders a self-contained HTML API reference (served at `GET /docs`) from an OpenAPI 3.1
 * document.
 *
 * The page works fully offline: inline CSS, no scripts, fonts, images or other external resources.
 * Everything taken from the document is HTML-escaped; backtick pairs in descriptions become
 * `<code>` spans (no other markdown). Only Web-standard JavaScript is used, so this runs on Node,
 * Deno and edge runtimes alike.
 */

/** A tag as declared at the top level of the document. */
export interface TagLike {
  name: string
  description?: string
}

/**
 * The part of an OpenAPI 3.1 document the page reads. Nested values are deliberately `unknown`
 * (path items, operations, schemas…): they are narrowed at runtime, so any document object —
 * including one built by hand or parsed from JSON — is accepted.
 */
export interface OpenAPIDocumentLike {
  openapi?: string
  info: { title: string; version: string; description?: string }
  servers?: readonly unknown[]
  tags?: readonly TagLike[]
  security?: readonly unknown[]
  /** path → path item (method → operation, plus shared `parameters`). */
  paths?: { readonly [path: string]: unknown }
  components?: {
    schemas?: { readonly [name: string]: unknown }
    securitySchemes?: { readonly [name: string]: unknown }
    parameters?: { readonly [name: string]: unknown }
    requestBodies?: { readonly [name: string]: unknown }
    responses?: { readonly [name: string]: unknown }
    headers?: { readonly [name: string]: unknown }
  }
}

export interface DocsPageOptions {
  /** Where the raw OpenAPI document is served (e.g. `/openapi.json`); linked from the header. */
  specUrl?: string
}

type UnknownRecord = Readonly<Record<string, unknown>>

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const
/** Inline schemas deeper than this are elided; `$ref`s are never expanded, only linked. */
const MAX_SCHEMA_DEPTH = 8
const MAX_LITERAL_CHARS = 120
const PROBLEM_MEDIA_TYPE = 'application/problem+json'
const PROBLEM_SCHEMA = 'Problem'
const UNTAGGED = 'other'

// ---------------------------------------------------------------------------------------------
// Narrowing helpers

function isRecord(value: unknown): value is UnknownRecord {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function asRecord(value: unknown): UnknownRecord {
  return isRecord(value) ? value : {}
}

function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : []
}

function asString(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined
}

function asStrings(value: unknown): string[] {
  if (typeof value === 'string') return [value]
  return asArray(value).filter((item): item is string => typeof item === 'string')
}

function has(record: UnknownRecord, key: string): boolean {
  return Object.hasOwn(record, key) && record[key] !== undefined
}

// ---------------------------------------------------------------------------------------------
// Escaping and text

const HTML_ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

/** Escapes text for both element content and quoted attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char)
}

/** Escaped text with backtick pairs rendered as `<code>` spans. */
function inline(text: string): string {
  return escapeHtml(text).replace(/`([^`\n]+)`/g, '<code>$1</code>')
}

/** A description as paragraphs: blank lines separate paragraphs, single newlines break lines. */
function prose(text: string | undefined, className = 'desc'): string {
  if (text === undefined || text.trim() === '') return ''
  const paragraphs = text
    .trim()
    .split(/\n\s*\n/)
    .map((paragraph) => `<p>${inline(paragraph.trim()).replace(/\n/g, '<br>')}</p>`)
  return `<div class="${className}">${paragraphs.join('')}</div>`
}

/** A JSON literal (enum value, default, example), truncated when long. */
function literal(value: unknown): string {
  let text: string
  try {
    text = JSON.stringify(value) ?? String(value)
  } catch {
    text = String(value)
  }
  if (text.length > MAX_LITERAL_CHARS) text = `${text.slice(0, MAX_LITERAL_CHARS - 1)}…`
  return `<code>${escapeHtml(text)}</code>`
}

/** A safe fragment identifier: no whitespace, never empty. */
function anchorId(text: string): string {
  const id = text.trim().replace(/\s+/g, '-')
  return id === '' ? 'x' : id
}

function schemaAnchor(name: string): string {
  return `schema-${anchorId(name)}`
}

// ---------------------------------------------------------------------------------------------
// Document model

interface Operation {
  id: string
  method: string
  path: string
  op: UnknownRecord
  /** Path-level parameters merged with the operation's (the operation wins). */
  parameters: unknown[]
  tags: string[]
}

interface Context {
  doc: OpenAPIDocumentLike
  schemas: UnknownRecord
}

function collectOperations(doc: OpenAPIDocumentLike): Operation[] {
  const operations: Operation[] = []
  const usedIds = new Set<string>()
  for (const [path, rawItem] of Object.entries(doc.paths ?? {})) {
    const item = asRecord(rawItem)
    const shared = asArray(item.parameters)
    for (const method of METHODS) {
      const op = item[method]
      if (!isRecord(op)) continue
      const base = anchorId(
        asString(op.operationId) ?? `${method}-${path.replace(/[^\w-]+/g, '-')}`,
      )
      let id = base
      for (let n = 2; usedIds.has(id); n++) id = `${base}-${n}`
      usedIds.add(id)
      const own = asArray(op.parameters)
      const ownKeys = new Set(own.map((p) => parameterKey(doc, p)))
      const parameters = [...shared.filter((p) => !ownKeys.has(parameterKey(doc, p))), ...own]
      const tags = asStrings(op.tags)
      operations.push({ id, method, path, op, parameters, tags: tags.length ? tags : [UNTAGGED] })
    }
  }
  return operations
}

function parameterKey(doc: OpenAPIDocumentLike, parameter: unknown): string {
  const p = resolve(doc, parameter)
  return `${asString(p.in) ?? ''}:${asString(p.name) ?? ''}`
}

/** Follows local `$ref`s (`#/components/...`) to non-schema objects; unresolvable → `{}`. */
function resolve(doc: OpenAPIDocumentLike, value: unknown): UnknownRecord {
  let current = value
  for (let hops = 0; hops < 10; hops++) {
    if (!isRecord(current)) return {}
    const ref = asString(current.$ref)
    if (ref === undefined) return current
    current = lookupPointer(doc, ref)
  }
  return {}
}

function lookupPointer(doc: OpenAPIDocumentLike, ref: string): unknown {
  if (!ref.startsWith('#/')) return undefined
  let current: unknown = doc
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~')
    if (!isRecord(current) || !Object.hasOwn(current, key)) return undefined
    current = current[key]
  }
  return current
}

function schemaRefName(ref: string): string | undefined {
  const prefix = '#/components/schemas/'
  if (!ref.startsWith(prefix)) return undefined
  return decodeURIComponent(ref.slice(prefix.length)).replace(/~1/g, '/').replace(/~0/g, '~')
}

interface TagGroup {
  name: string
  description?: string
  operations: Operation[]
}

function groupByTag(doc: OpenAPIDocumentLike, operations: Operation[]): TagGroup[] {
  const groups = new Map<string, TagGroup>()
  for (const tag of doc.tags ?? []) {
    if (!isRecord(tag) || typeof tag.name !== 'string' || groups.has(tag.name)) continue
    groups.set(tag.name, { name: tag.name, description: asString(tag.description), operations: [] })
  }
  for (const operation of operations) {
    for (const tag of operation.tags) {
      let group = groups.get(tag)
      if (group === undefined) {
        group = { name: tag, operations: [] }
        groups.set(tag, group)
      }
      group.operations.push(operation)
    }
  }
  return [...groups.values()].filter((group) => group.operations.length > 0)
}

// ---------------------------------------------------------------------------------------------
// Schemas

/** Splits `anyOf: [X, {type: 'null'}]`, `type: [..., 'null']` and 3.0 `nullable` into X + flag. */
function splitNullable(schema: UnknownRecord): { schema: UnknownRecord; nullable: boolean } {
  if (schema.nullable === true) {
    const { nullable: _, ...rest } = schema
    return { schema: rest, nullable: true }
  }
  if (Array.isArray(schema.type) && schema.type.includes('null')) {
    const types = schema.type.filter((type) => type !== 'null')
    const type = types.length === 1 ? types[0] : types
    return { schema: { ...schema, type }, nullable: true }
  }
  for (const key of ['anyOf', 'oneOf'] as const) {
    const variants = asArray(schema[key])
    if (variants.length < 2) continue
    const isNull = (v: unknown) => isRecord(v) && v.type === 'null' && Object.keys(v).length === 1
    const others = variants.filter((v) => !isNull(v))
    if (others.length === variants.length) continue
    const { [key]: _, ...outer } = schema
    if (others.length === 1 && isRecord(others[0])) {
      const inner = others[0]
      // Outer annotations (description, default…) sit next to the anyOf; keep both.
      const merged = has(inner, '$ref') ? { ...outer, $ref: inner.$ref } : { ...inner, ...outer }
      return { schema: merged, nullable: true }
    }
    return { schema: { ...outer, [key]: others }, nullable: true }
  }
  return { schema, nullable: false }
}

function isComposite(schema: UnknownRecord): boolean {
  return ['anyOf', 'oneOf', 'allOf'].some((key) => asArray(schema[key]).length > 0)
}

function isObjectLike(schema: UnknownRecord): boolean {
  return (
    schema.type === 'object' ||
    isRecord(schema.properties) ||
    (schema.type === undefined && has(schema, 'additionalProperties'))
  )
}

/** Whether the schema needs a nested block beyond its one-line signature. */
function needsBlock(raw: unknown, depth = 0): boolean {
  if (!isRecord(raw) || has(raw, '$ref') || depth > MAX_SCHEMA_DEPTH) return false
  const { schema } = splitNullable(raw)
  if (has(schema, '$ref')) return false
  if (isComposite(schema)) return true
  if (isRecord(schema.properties) && Object.keys(schema.properties).length > 0) return true
  if (schema.type === 'array' || has(schema, 'items')) return needsNested(schema.items, depth + 1)
  if (isRecord(schema.additionalProperties)) {
    return needsNested(schema.additionalProperties, depth + 1)
  }
  return false
}

/** Whether an item or value schema is worth showing beyond its type in the parent's signature. */
function needsNested(raw: unknown, depth = 0): boolean {
  if (!isRecord(raw) || has(raw, '$ref')) return false
  if (needsBlock(raw, depth)) return true
  const { schema } = splitNullable(raw)
  return !has(schema, '$ref') && (constraints(schema) !== '' || has(schema, 'description'))
}

function refLink(ref: string): string {
  const name = schemaRefName(ref)
  if (name === undefined) return `<code>${escapeHtml(ref)}</code>`
  return `<a class="ref" href="#${escapeHtml(schemaAnchor(name))}">${escapeHtml(name)}</a>`
}

/** A one-line type: `string (date-time)`, `array of Foo`, `record<string, integer>`, `A | B`. */
function typeLabel(raw: unknown, depth = 0): string {
  if (!isRecord(raw)) return raw === true ? '<span class="type">any</span>' : ''
  if (depth > 4) return '<span class="type">…</span>'
  const ref = asString(raw.$ref)
  const { schema, nullable } =
    ref === undefined ? splitNullable(raw) : { schema: raw, nullable: false }
  const nullSuffix = nullable ? ' <span class="type">| null</span>' : ''
  const innerRef = asString(schema.$ref)
  if (innerRef !== undefined) return refLink(innerRef) + nullSuffix
  for (const [key, joiner] of [
    ['oneOf', ' | '],
    ['anyOf', ' | '],
    ['allOf', ' &amp; '],
  ] as const) {
    const variants = asArray(schema[key])
    if (variants.length > 0) {
      const labels = variants.map(
        (variant) => literalLabel(variant) ?? (typeLabel(variant, depth + 1) || 'any'),
      )
      return `${labels.join(`<span class="type">${joiner}</span>`)}${nullSuffix}`
    }
  }
  const types = asStrings(schema.type)
  const format = asString(schema.format)
  let label: string
  if (types.includes('array') || (types.length === 0 && has(schema, 'items'))) {
    const items = typeLabel(schema.items, depth + 1) || '<span class="type">any</span>'
    label = `<span class="type">array of</span> ${isUnion(schema.items) ? parenthesize(items) : items}`
  } else if (isObjectLike(schema) && !isRecord(schema.properties)) {
    const ap = schema.additionalProperties
    const value =
      ap === undefined || ap === true ? '<span class="type">any</span>' : typeLabel(ap, depth + 1)
    label =
      ap === false
        ? '<span class="type">object</span>'
        : `<span class="type">record&lt;string,</span> ${value || 'any'}<span class="type">&gt;</span>`
  } else if (types.length > 0) {
    label = `<span class="type">${escapeHtml(types.join(' | '))}</span>`
  } else if (isObjectLike(schema)) {
    label = '<span class="type">object</span>'
  } else if (has(schema, 'const')) {
    label = literal(schema.const)
  } else if (has(schema, 'enum')) {
    label = '<span class="type">enum</span>'
  } else {
    label = '<span class="type">any</span>'
  }
  if (format !== undefined) label += ` <span class="format">(${escapeHtml(format)})</span>`
  const compound = types.includes('array') || types.includes('object') || types.length > 1
  return (nullable && compound ? parenthesize(label) : label) + nullSuffix
}

/** A variant that allows exactly one value reads best as that value: `"all" | string`. */
function literalLabel(raw: unknown): string | undefined {
  if (!isRecord(raw)) return undefined
  if (has(raw, 'const')) return literal(raw.const)
  const values = asArray(raw.enum)
  return values.length === 1 ? literal(values[0]) : undefined
}

function parenthesize(label: string): string {
  return `<span class="type">(</span>${label}<span class="type">)</span>`
}

/** Whether the schema's label reads as `A | B` (so it needs parentheses inside another label). */
function isUnion(raw: unknown): boolean {
  if (!isRecord(raw) || has(raw, '$ref')) return false
  const { schema, nullable } = splitNullable(raw)
  return (
    nullable ||
    asArray(schema.oneOf).length + asArray(schema.anyOf).length > 1 ||
    asStrings(schema.type).length > 1
  )
}

/** Constraint chips: enum, pattern, bounds, default, flags. */
function constraints(schema: UnknownRecord): string {
  const chips: string[] = []
  const chip = (label: string, value: string) =>
    chips.push(`<span class="chip"><span class="chip-k">${label}</span> ${value}</span>`)
  const enumValues = asArray(schema.enum)
  if (enumValues.length > 0) chip('one of', enumValues.map(literal).join(' '))
  if (has(schema, 'const') && has(schema, 'type')) chip('const', literal(schema.const))
  const pattern = asString(schema.pattern)
  if (pattern !== undefined) chip('pattern', `<code>${escapeHtml(pattern)}</code>`)
  const bounds: [string, string][] = [
    ['minimum', '≥'],
    ['exclusiveMinimum', '&gt;'],
    ['maximum', '≤'],
    ['exclusiveMaximum', '&lt;'],
  ]
  for (const [key, symbol] of bounds) {
    const value = schema[key]
    if (typeof value === 'number') chip(symbol, escapeHtml(String(value)))
  }
  for (const [key, label] of [
    ['minLength', 'min length'],
    ['maxLength', 'max length'],
    ['minItems', 'min items'],
    ['maxItems', 'max items'],
    ['minProperties', 'min properties'],
    ['maxProperties', 'max properties'],
    ['multipleOf', 'multiple of'],
  ] as const) {
    const value = schema[key]
    if (typeof value === 'number') chip(label, escapeHtml(String(value)))
  }
  if (schema.uniqueItems === true) chip('unique', 'items')
  if (has(schema, 'default')) chip('default', literal(schema.default))
  const examples = has(schema, 'example') ? [schema.example] : asArray(schema.examples)
  if (examples.length > 0) chip('example', literal(examples[0]))
  const flags: string[] = []
  if (schema.readOnly === true) flags.push('read-only')
  if (schema.writeOnly === true) flags.push('write-only')
  if (schema.deprecated === true) flags.push('deprecated')
  if (schema.additionalProperties === false && isRecord(schema.properties)) {
    flags.push('no other properties')
  }
  for (const flag of flags) chips.push(`<span class="chip flag">${flag}</span>`)
  return chips.length ? `<span class="chips">${chips.join(' ')}</span>` : ''
}

/** The signature line: type, nullability, constraints. */
function signature(raw: UnknownRecord): string {
  const { schema } = has(raw, '$ref') ? { schema: raw } : splitNullable(raw)
  const parts = [typeLabel(raw)]
  parts.push(constraints(schema))
  return parts.filter(Boolean).join(' ')
}

/**
 * A schema as a nested, readable block. `$ref`s to component schemas are links, never expanded,
 * so reference cycles cannot recurse; `ancestors` and the depth limit guard inline cycles.
 */
function renderSchema(raw: unknown, depth = 0, ancestors: readonly unknown[] = []): string {
  if (raw === true || raw === undefined)
    return '<div class="schema"><span class="type">any</span></div>'
  if (raw === false) return '<div class="schema"><span class="type">nothing</span></div>'
  if (!isRecord(raw)) return ''
  if (ancestors.includes(raw)) return '<div class="schema muted">(circular)</div>'
  if (depth > MAX_SCHEMA_DEPTH) return '<div class="schema muted">… (nested too deeply)</div>'
  const title = asString(raw.title)
  const head = `<div class="sig">${title ? `<span class="title">${inline(title)}</span> ` : ''}${signature(raw)}</div>`
  return `<div class="schema">${head}${prose(asString(raw.description))}${schemaBody(raw, depth, [...ancestors, raw])}</div>`
}

/** Properties, variants, item and value schemas — whatever follows the signature line. */
function schemaBody(raw: UnknownRecord, depth: number, ancestors: readonly unknown[]): string {
  if (has(raw, '$ref')) return ''
  const { schema } = splitNullable(raw)
  if (has(schema, '$ref')) return ''
  const parts: string[] = []
  for (const [key, label] of [
    ['oneOf', 'Exactly one of'],
    ['anyOf', 'Any of'],
    ['allOf', 'All of'],
  ] as const) {
    const variants = asArray(schema[key])
    if (variants.length === 0) continue
    const items = variants.map(
      (variant) => `<li>${renderSchema(variant, depth + 1, ancestors)}</li>`,
    )
    parts.push(
      `<div class="variants"><div class="label">${label}</div><ol>${items.join('')}</ol></div>`,
    )
  }
  const properties = asRecord(schema.properties)
  const required = new Set(asStrings(schema.required))
  const names = Object.keys(properties)
  if (names.length > 0) {
    const rows = names.map((name) => {
      const prop = properties[name]
      const propRecord = asRecord(prop)
      const mark = required.has(name)
        ? '<span class="req" title="required">required</span>'
        : '<span class="opt">optional</span>'
      let nested = ''
      if (needsBlock(prop)) {
        if (ancestors.includes(prop)) nested = '<div class="muted">(circular)</div>'
        else if (depth + 1 > MAX_SCHEMA_DEPTH)
          nested = '<div class="muted">… (nested too deeply)</div>'
        else nested = schemaBody(propRecord, depth + 1, [...ancestors, propRecord])
      }
      const title = asString(propRecord.title)
      return (
        `<li><div class="prop-head"><code class="prop">${escapeHtml(name)}</code> ${mark} ` +
        `${title ? `<span class="title">${inline(title)}</span> ` : ''}${isRecord(prop) ? signature(prop) : typeLabel(prop)}</div>` +
        `${prose(asString(propRecord.description))}${nested}</li>`
      )
    })
    parts.push(`<ul class="props">${rows.join('')}</ul>`)
  }
  const ap = schema.additionalProperties
  if (names.length > 0 && isRecord(ap)) {
    parts.push(
      `<div class="extra"><span class="label">Other properties:</span> ${renderSchema(ap, depth + 1, ancestors)}</div>`,
    )
  } else if (names.length === 0 && isRecord(ap) && needsNested(ap)) {
    parts.push(
      `<div class="extra"><span class="label">Each value:</span> ${renderSchema(ap, depth + 1, ancestors)}</div>`,
    )
  }
  if (needsNested(schema.items) && isRecord(schema.items)) {
    parts.push(
      `<div class="extra"><span class="label">Each item:</span> ${renderSchema(schema.items, depth + 1, ancestors)}</div>`,
    )
  }
  return parts.join('')
}

// ---------------------------------------------------------------------------------------------
// Operations

function securityInfo(ctx: Context, op: UnknownRecord): string {
  const requirements = has(op, 'security') ? asArray(op.security) : asArray(ctx.doc.security)
  const schemes = asRecord(ctx.doc.components?.securitySchemes)
  const alternatives = requirements.filter(isRecord).map((requirement) => {
    const entries = Object.entries(requirement)
    if (entries.length === 0) return 'none'
    return entries
      .map(([name, scopes]) => {
        const scheme = asRecord(schemes[name])
        const scopeList = asStrings(scopes)
        const scopeText = scopeList.length
          ? ` with scope ${scopeList.map((s) => `<code>${escapeHtml(s)}</code>`).join(', ')}`
          : ''
        return `${describeScheme(name, scheme)}${scopeText}`
      })
      .join(' and ')
  })
  const extra = asStrings(op['x-required-scope'] ?? op['x-scopes'])
  const scopeNote = extra.length
    ? ` · scope ${extra.map((s) => `<code>${escapeHtml(s)}</code>`).join(', ')}`
    : ''
  if (alternatives.length === 0 || alternatives.every((a) => a === 'none')) {
    return `<span class="auth public">Public</span> <span class="muted">no authentication</span>${scopeNote}`
  }
  const optional = alternatives.includes('none') ? ' <span class="muted">(optional)</span>' : ''
  const text = alternatives.filter((a) => a !== 'none').join(' <span class="muted">or</span> ')
  return `<span class="auth">${text}</span>${optional}${scopeNote}`
}

function describeScheme(name: string, scheme: UnknownRecord): string {
  const type = asString(scheme.type)
  const httpScheme = asString(scheme.scheme)?.toLowerCase()
  let label = escapeHtml(name)
  if (type === 'http' && httpScheme === 'bearer') label = 'Bearer token'
  else if (type === 'http' && httpScheme === 'basic') label = 'HTTP Basic'
  else if (type === 'apiKey') {
    const where = asString(scheme.in) ?? 'header'
    label = `API key in ${escapeHtml(where)} <code>${escapeHtml(asString(scheme.name) ?? name)}</code>`
  } else if (type === 'oauth2') label = `OAuth 2 (${escapeHtml(name)})`
  else if (type === 'openIdConnect') label = `OpenID Connect (${escapeHtml(name)})`
  const description = asString(scheme.description)
  return description ? `<span title="${escapeHtml(description)}">${label}</span>` : label
}

function renderParameters(ctx: Context, parameters: readonly unknown[]): string {
  const rows = parameters
    .map((raw) => resolve(ctx.doc, raw))
    .filter((p) => typeof p.name === 'string')
    .map((p) => {
      const name = asString(p.name) ?? ''
      const where = asString(p.in) ?? ''
      const required = p.required === true || where === 'path'
      const rawSchema = isRecord(p.schema) ? p.schema : firstContentSchema(p.content)
      const schemaRecord = asRecord(rawSchema)
      const schemaCell = isRecord(rawSchema)
        ? signature(rawSchema) +
          (needsBlock(rawSchema) ? schemaBody(rawSchema, 1, [rawSchema]) : '')
        : ''
      const description = asString(p.description) ?? asString(schemaRecord.description)
      const deprecated = p.deprecated === true ? ' <span class="chip flag">deprecated</span>' : ''
      return (
        `<tr><td><code class="prop">${escapeHtml(name)}</code>${deprecated}</td>` +
        `<td><span class="in">${escapeHtml(where)}</span></td>` +
        `<td>${required ? '<span class="req">required</span>' : '<span class="opt">optional</span>'}</td>` +
        `<td>${schemaCell}</td><td>${prose(description)}</td></tr>`
      )
    })
  if (rows.length === 0) return ''
  return (
    '<h4>Parameters</h4><div class="table-wrap"><table class="params"><thead><tr>' +
    '<th>Name</th><th>In</th><th>Required</th><th>Type</th><th>Description</th>' +
    `</tr></thead><tbody>${rows.join('')}</tbody></table></div>`
  )
}

function firstContentSchema(content: unknown): unknown {
  for (const media of Object.values(asRecord(content))) {
    if (isRecord(media) && has(media, 'schema')) return media.schema
  }
  return undefined
}

function renderContent(ctx: Context, content: unknown): string {
  const entries = Object.entries(asRecord(content))
  return entries
    .map(([mediaType, rawMedia]) => {
      const media = asRecord(rawMedia)
      const isProblem = mediaType.toLowerCase() === PROBLEM_MEDIA_TYPE
      const problemNote =
        isProblem &&
        Object.hasOwn(ctx.schemas, PROBLEM_SCHEMA) &&
        !refersTo(media.schema, PROBLEM_SCHEMA)
          ? ` <span class="muted">— see</span> ${refLink(`#/components/schemas/${PROBLEM_SCHEMA}`)}`
          : ''
      const schema = has(media, 'schema') ? renderSchema(media.schema) : ''
      const example = has(media, 'example')
        ? `<div class="example"><span class="label">Example</span> ${literal(media.example)}</div>`
        : ''
      return `<div class="media"><div class="media-type"><code>${escapeHtml(mediaType)}</code>${problemNote}</div>${schema}${example}</div>`
    })
    .join('')
}

function refersTo(schema: unknown, name: string): boolean {
  return isRecord(schema) && asString(schema.$ref) === `#/components/schemas/${name}`
}

function renderRequestBody(ctx: Context, raw: unknown): string {
  if (raw === undefined) return ''
  const body = resolve(ctx.doc, raw)
  const required =
    body.required === true
      ? '<span class="req">required</span>'
      : '<span class="opt">optional</span>'
  return `<h4>Request body ${required}</h4>${prose(asString(body.description))}${renderContent(ctx, body.content)}`
}

function statusClass(status: string): string {
  const first = status.charAt(0)
  return ['1', '2', '3', '4', '5'].includes(first) ? `s${first}xx` : 'sdefault'
}

/** A problem response is one line: its media type and a link to its schema. */
function compactProblem(ctx: Context, content: unknown): string | undefined {
  const entries = Object.entries(asRecord(content))
  const [only] = entries
  if (entries.length !== 1 || only === undefined) return undefined
  const [mediaType, rawMedia] = only
  const media = asRecord(rawMedia)
  if (mediaType.toLowerCase() !== PROBLEM_MEDIA_TYPE || has(media, 'example')) return undefined
  const ref = isRecord(media.schema) ? asString(media.schema.$ref) : undefined
  if (has(media, 'schema') && ref === undefined) return undefined
  const target =
    ref ??
    (Object.hasOwn(ctx.schemas, PROBLEM_SCHEMA) ? `#/components/schemas/${PROBLEM_SCHEMA}` : '')
  const link = target ? ` ${refLink(target)}` : ''
  return ` <span class="problem-ref"><code>${escapeHtml(mediaType)}</code>${link}</span>`
}

function renderResponses(ctx: Context, raw: unknown): string {
  const entries = Object.entries(asRecord(raw)).sort(([a], [b]) => a.localeCompare(b))
  if (entries.length === 0) return ''
  const items = entries.map(([status, rawResponse]) => {
    const response = resolve(ctx.doc, rawResponse)
    const headers = Object.entries(asRecord(response.headers)).map(([name, rawHeader]) => {
      const header = resolve(ctx.doc, rawHeader)
      const schema = isRecord(header.schema) ? ` ${signature(header.schema)}` : ''
      return `<li><code class="prop">${escapeHtml(name)}</code>${schema}${prose(asString(header.description))}</li>`
    })
    const headerList = headers.length
      ? `<div class="headers"><span class="label">Headers</span><ul>${headers.join('')}</ul></div>`
      : ''
    const compact = compactProblem(ctx, response.content)
    return (
      `<li class="response"><div class="response-head"><span class="status ${statusClass(status)}">${escapeHtml(status)}</span> ` +
      `${inline(asString(response.description) ?? '')}${compact ?? ''}</div>${headerList}` +
      `${compact === undefined ? renderContent(ctx, response.content) : ''}</li>`
    )
  })
  return `<h4>Responses</h4><ul class="responses">${items.join('')}</ul>`
}

function methodBadge(method: string): string {
  return `<span class="method m-${method}">${method.toUpperCase()}</span>`
}

function renderOperation(ctx: Context, operation: Operation): string {
  const { op } = operation
  const summary = asString(op.summary)
  const deprecated = op.deprecated === true ? ' <span class="chip flag">deprecated</span>' : ''
  const operationId = asString(op.operationId) ?? operation.id
  return (
    `<section class="operation${op.deprecated === true ? ' deprecated' : ''}" id="${escapeHtml(operation.id)}">` +
    `<h3><a class="anchor" href="#${escapeHtml(operation.id)}">${methodBadge(operation.method)} ` +
    `<span class="path">${escapeHtml(operation.path)}</span></a>${deprecated}</h3>` +
    (summary ? `<p class="summary">${inline(summary)}</p>` : '') +
    `<dl class="facts"><dt>Operation</dt><dd><code>${escapeHtml(operationId)}</code></dd>` +
    `<dt>Auth</dt><dd>${securityInfo(ctx, op)}</dd></dl>` +
    prose(asString(op.description)) +
    renderParameters(ctx, operation.parameters) +
    renderRequestBody(ctx, op.requestBody) +
    renderResponses(ctx, op.responses) +
    '</section>'
  )
}

// ---------------------------------------------------------------------------------------------
// Page sections

function renderToc(
  groups: readonly TagGroup[],
  schemaNames: readonly string[],
  hasErrors: boolean,
): string {
  const tagLists = groups.map((group) => {
    const links = group.operations.map(
      (operation) =>
        `<li><a href="#${escapeHtml(operation.id)}">${methodBadge(operation.method)} ` +
        `<span class="path">${escapeHtml(operation.path)}</span></a></li>`,
    )
    return `<li><a class="toc-tag" href="#${escapeHtml(tagAnchor(group.name))}">${escapeHtml(group.name)}</a><ul>${links.join('')}</ul></li>`
  })
  const extras: string[] = []
  if (hasErrors) extras.push('<li><a class="toc-tag" href="#errors">Errors</a></li>')
  if (schemaNames.length > 0) {
    const links = schemaNames.map(
      (name) => `<li><a href="#${escapeHtml(schemaAnchor(name))}">${escapeHtml(name)}</a></li>`,
    )
    extras.push(
      `<li><a class="toc-tag" href="#schemas">Schemas</a><ul class="toc-schemas">${links.join('')}</ul></li>`,
    )
  }
  return `<nav class="toc" aria-label="Contents"><h2>Contents</h2><ul>${tagLists.join('')}${extras.join('')}</ul></nav>`
}

function tagAnchor(name: string): string {
  return `tag-${anchorId(name)}`
}

function renderGroup(ctx: Context, group: TagGroup): string {
  return (
    `<section class="tag" id="${escapeHtml(tagAnchor(group.name))}"><h2>${escapeHtml(group.name)}</h2>` +
    `${prose(group.description)}${group.operations.map((op) => renderOperation(ctx, op)).join('')}</section>`
  )
}

interface ProblemUse {
  status: string
  description: string
  operations: Operation[]
}

function collectProblems(ctx: Context, operations: readonly Operation[]): ProblemUse[] {
  const uses = new Map<string, ProblemUse>()
  for (const operation of operations) {
    for (const [status, raw] of Object.entries(asRecord(operation.op.responses))) {
      const response = resolve(ctx.doc, raw)
      const isProblem = Object.keys(asRecord(response.content)).some(
        (mediaType) => mediaType.toLowerCase() === PROBLEM_MEDIA_TYPE,
      )
      if (!isProblem) continue
      const description = asString(response.description) ?? ''
      const key = `${status}\u0000${description}`
      const use = uses.get(key) ?? { status, description, operations: [] }
      use.operations.push(operation)
      uses.set(key, use)
    }
  }
  return [...uses.values()].sort((a, b) => a.status.localeCompare(b.status))
}

function renderErrors(ctx: Context, problems: readonly ProblemUse[]): string {
  if (problems.length === 0) return ''
  const problemLink = Object.hasOwn(ctx.schemas, PROBLEM_SCHEMA)
    ? ` shaped like ${refLink(`#/components/schemas/${PROBLEM_SCHEMA}`)}`
    : ''
  const rows = problems.map(
    (use) =>
      `<tr><td><span class="status ${statusClass(use.status)}">${escapeHtml(use.status)}</span></td>` +
      `<td>${inline(use.description)}</td><td class="muted">${use.operations.length} ` +
      `operation${use.operations.length === 1 ? '' : 's'}</td></tr>`,
  )
  return (
    '<section class="errors" id="errors"><h2>Errors</h2>' +
    `<p>Errors are <code>${PROBLEM_MEDIA_TYPE}</code> documents (RFC 9457)${problemLink}.</p>` +
    '<div class="table-wrap"><table><thead><tr><th>Status</th><th>Meaning</th><th>Used by</th></tr></thead>' +
    `<tbody>${rows.join('')}</tbody></table></div></section>`
  )
}

/** Which operations use each component schema, directly or through other schemas. */
function schemaUsage(ctx: Context, operations: readonly Operation[]): Map<string, Operation[]> {
  const refsOf = new Map<string, Set<string>>()
  for (const [name, schema] of Object.entries(ctx.schemas)) {
    const names = new Set<string>()
    collectRefs(schema, names, new Set())
    refsOf.set(name, names)
  }
  const usage = new Map<string, Operation[]>()
  for (const operation of operations) {
    const names = new Set<string>()
    collectRefs(operation.op, names, new Set())
    collectRefs(operation.parameters, names, new Set())
    for (const name of names) {
      for (const inner of refsOf.get(name) ?? []) names.add(inner)
    }
    for (const name of names) {
      const list = usage.get(name) ?? []
      list.push(operation)
      usage.set(name, list)
    }
  }
  return usage
}

function collectRefs(value: unknown, names: Set<string>, seen: Set<unknown>): void {
  if (typeof value !== 'object' || value === null || seen.has(value)) return
  seen.add(value)
  if (Array.isArray(value)) {
    for (const item of value) collectRefs(item, names, seen)
    return
  }
  if (!isRecord(value)) return
  for (const [key, child] of Object.entries(value)) {
    if (key === '$ref' && typeof child === 'string') {
      const name = schemaRefName(child)
      if (name !== undefined) names.add(name)
    } else {
      collectRefs(child, names, seen)
    }
  }
}

function renderSchemas(ctx: Context, operations: readonly Operation[]): string {
  const names = Object.keys(ctx.schemas)
  if (names.length === 0) return ''
  const usage = schemaUsage(ctx, operations)
  const sections = names.map((name) => {
    const users = usage.get(name) ?? []
    const usedBy = users.length
      ? `<p class="used-by"><span class="label">Used by</span> ${users
          .map(
            (op) =>
              `<a href="#${escapeHtml(op.id)}"><code>${escapeHtml(asString(op.op.operationId) ?? op.id)}</code></a>`,
          )
          .join(', ')}</p>`
      : ''
    return (
      `<section class="component" id="${escapeHtml(schemaAnchor(name))}">` +
      `<h3><a class="anchor" href="#${escapeHtml(schemaAnchor(name))}">${escapeHtml(name)}</a></h3>` +
      `${renderSchema(ctx.schemas[name])}${usedBy}</section>`
    )
  })
  return `<section class="schemas" id="schemas"><h2>Schemas</h2>${sections.join('')}</section>`
}

function renderServers(doc: OpenAPIDocumentLike): string {
  const servers = asArray(doc.servers)
    .filter(isRecord)
    .map((server) => {
      const url = asString(server.url)
      if (url === undefined) return ''
      const description = asString(server.description)
      return `<code>${escapeHtml(url)}</code>${description ? ` <span class="muted">${inline(description)}</span>` : ''}`
    })
    .filter(Boolean)
  return servers.length
    ? `<p class="servers"><span class="label">Base URL</span> ${servers.join(', ')}</p>`
    : ''
}

const STYLE = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1d2430;--muted:#667085;--line:#e3e7ee;--panel:#f6f8fb;
--code:#eef1f6;--link:#1d5fd1;--get:#1f7a4d;--post:#1d5fd1;--put:#a05a00;--patch:#7a3fb8;--delete:#c0322b;
--other:#5b6472;--ok:#1f7a4d;--redirect:#5b6472;--client:#a05a00;--server:#c0322b;--req:#c0322b}
@media (prefers-color-scheme:dark){:root{--bg:#12151b;--fg:#e4e8ef;--muted:#98a2b3;--line:#2a303b;
--panel:#181c24;--code:#232936;--link:#7fb0ff;--get:#4cc38a;--post:#7fb0ff;--put:#f0a94b;--patch:#c39bf0;
--delete:#ff7b72;--other:#a0a8b6;--ok:#4cc38a;--redirect:#a0a8b6;--client:#f0a94b;--server:#ff7b72;--req:#ff7b72}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,
"Helvetica Neue",Arial,sans-serif}
code,.path,.method,.status{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;font-size:.88em}
code{background:var(--code);padding:.05em .35em;border-radius:4px;overflow-wrap:anywhere}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
.layout{display:grid;grid-template-columns:minmax(220px,290px) minmax(0,1fr);max-width:1400px;margin:0 auto}
.toc{position:sticky;top:0;align-self:start;max-height:100vh;overflow:auto;padding:1.25rem 1rem;
border-right:1px solid var(--line);font-size:.9em}
.toc h2{font-size:.8em;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:0 0 .5rem}
.toc ul{list-style:none;margin:0;padding:0}.toc ul ul{margin:.2rem 0 .8rem}
.toc li li a{display:flex;gap:.4rem;align-items:baseline;padding:.1rem 0;color:var(--fg)}
.toc .path{overflow-wrap:anywhere}.toc-tag{font-weight:600;text-transform:capitalize}
.toc .method{min-width:3.6em;font-size:.7em}
main{padding:1.5rem 2rem 4rem;min-width:0}
header.page{border-bottom:1px solid var(--line);padding-bottom:1rem;margin-bottom:1rem}
header.page h1{margin:0 0 .3rem;font-size:2rem}
.version{font-size:.85rem;color:var(--muted);font-weight:400;margin-left:.5rem}
h2{font-size:1.4rem;margin:2.5rem 0 .5rem;text-transform:capitalize}
h3{font-size:1.05rem;margin:0 0 .3rem;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
h4{font-size:.8rem;text-transform:uppercase;letter-spacing:.06em;color:var(--muted);margin:1.2rem 0 .4rem}
.anchor{color:inherit}.desc p{margin:.3rem 0}
.operation,.component{border:1px solid var(--line);border-radius:10px;padding:1rem 1.2rem;margin:1rem 0;
background:var(--panel);scroll-margin-top:1rem}
.operation.deprecated .path{text-decoration:line-through}
.summary{margin:.2rem 0 .5rem;font-weight:500}
.method{display:inline-block;text-align:center;color:#fff;background:var(--other);border-radius:5px;
padding:.1em .45em;font-weight:700;letter-spacing:.02em}
@media (prefers-color-scheme:dark){.method{color:#10131a}}
.m-get{background:var(--get)}.m-post{background:var(--post)}.m-put{background:var(--put)}
.m-patch{background:var(--patch)}.m-delete{background:var(--delete)}
.path{font-weight:600;overflow-wrap:anywhere}
.facts{display:grid;grid-template-columns:auto 1fr;gap:.15rem .8rem;margin:.4rem 0;font-size:.92em}
.facts dt{color:var(--muted)}.facts dd{margin:0}
.auth{font-weight:500}.auth.public{color:var(--ok)}
.muted{color:var(--muted)}.label{color:var(--muted);font-size:.85em;margin-right:.3rem}
.table-wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;vertical-align:top;padding:.4rem .6rem;border-bottom:1px solid var(--line)}
th{font-size:.8em;color:var(--muted);font-weight:600;text-transform:uppercase;letter-spacing:.04em}
td .desc p:first-child{margin-top:0}td .desc p:last-child{margin-bottom:0}
.in{color:var(--muted)}
.req{color:var(--req);font-size:.78em;font-weight:600;text-transform:uppercase;letter-spacing:.03em}
.opt{color:var(--muted);font-size:.78em;text-transform:uppercase;letter-spacing:.03em}
.type{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.88em}
.format{color:var(--muted);font-size:.85em}.title{font-weight:600}
.chips{display:inline}.chip{display:inline-block;font-size:.8em;border:1px solid var(--line);border-radius:999px;
padding:0 .5em;margin:.1em .15em .1em 0;background:var(--bg)}
.chip-k{color:var(--muted)}.chip code{background:none;padding:0}
.chip.flag{color:var(--muted)}
.schema{margin:.2rem 0}
.props{list-style:none;margin:.3rem 0 .3rem .2rem;padding:0 0 0 .9rem;border-left:2px solid var(--line)}
.props>li{padding:.25rem 0}
.prop{font-weight:600}
.variants ol{margin:.2rem 0;padding-left:1.4rem}.variants .label{display:block}
.extra{margin:.3rem 0}
.media{margin:.4rem 0 .6rem}.media-type{margin-bottom:.2rem}
.responses{list-style:none;margin:0;padding:0}
.response{border-top:1px solid var(--line);padding:.5rem 0}
.response:first-child{border-top:0}
.status{font-weight:700;padding:.05em .4em;border-radius:4px;border:1px solid currentColor}
.s2xx{color:var(--ok)}.s3xx{color:var(--redirect)}.s4xx{color:var(--client)}.s5xx{color:var(--server)}
.sdefault{color:var(--muted)}
.problem-ref{color:var(--muted);font-size:.9em;margin-left:.4rem}.problem-ref code{font-size:.85em}
.headers ul{margin:.2rem 0;padding-left:1.2rem}
.used-by{margin:.6rem 0 0;font-size:.9em}
@media (max-width:860px){.layout{display:block}.toc{position:static;max-height:none;border-right:0;
border-bottom:1px solid var(--line)}main{padding:1rem}}
@media print{.toc{display:none}.layout{display:block}.operation,.component{break-inside:avoid}}
`
  .trim()
  .replace(/\n/g, '')

/** The complete HTML page for `document`. Pure: the same document gives the same page. */
export function renderDocsPage(
  document: OpenAPIDocumentLike,
  options: DocsPageOptions = {},
): string {
  const info = asRecord(document.info)
  const title = asString(info.title) ?? 'API'
  const version = asString(info.version)
  const schemas = asRecord(document.components?.schemas)
  const ctx: Context = { doc: document, schemas }
  const operations = collectOperations(document)
  const groups = groupByTag(document, operations)
  const problems = collectProblems(ctx, operations)
  const schemaNames = Object.keys(schemas)
  const specLink = options.specUrl
    ? `<p class="spec"><a href="${escapeHtml(options.specUrl)}">OpenAPI document</a></p>`
    : ''
  const openapi = asString(document.openapi)
  return [
    '<!doctype html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light dark">',
    '<meta name="referrer" content="no-referrer">',
    `<title>${escapeHtml(title)}${version ? ` ${escapeHtml(version)}` : ''} — API reference</title>`,
    `<style>${STYLE}</style>`,
    '</head>',
    '<body>',
    '<div class="layout">',
    renderToc(groups, schemaNames, problems.length > 0),
    '<main>',
    '<header class="page">',
    `<h1>${escapeHtml(title)}${version ? `<span class="version">v${escapeHtml(version)}</span>` : ''}</h1>`,
    openapi ? `<p class="muted">OpenAPI ${escapeHtml(openapi)}</p>` : '',
    prose(asString(info.description)),
    renderServers(document),
    specLink,
    '</header>',
    ...groups.map((group) => renderGroup(ctx, group)),
    renderErrors(ctx, problems),
    renderSchemas(ctx, operations),
    '</main>',
    '</div>',
    '</body>',
    '</html>',
  ]
    .filter((line) => line !== '')
    .join('\n')
    .concat('\n')
}
