/**
 * The committed OpenAPI document as tests read it: its operations, and a JSON Schema 2020-12
 * validator (Ajv) for its parameters and bodies, with `$ref`s resolved inside the document.
 */
import { readFileSync } from 'node:fs'
import Ajv2020Module from 'ajv/dist/2020.js'

export type JsonSchema = Record<string, any>

export interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  required?: boolean
  schema: JsonSchema
}

export interface Operation {
  method: string
  path: string
  operationId: string
  parameters: Parameter[]
  security: Record<string, string[]>[]
  requestBody?: { required?: boolean; content: Record<string, { schema: JsonSchema }> }
  responses: Record<string, { content?: Record<string, { schema: JsonSchema }> }>
}

export const DOCUMENT = JSON.parse(readFileSync('openapi/openapi.json', 'utf8')) as {
  paths: Record<string, Record<string, Omit<Operation, 'method' | 'path'>>>
  components: { schemas: Record<string, JsonSchema> }
}

export const OPERATIONS: Operation[] = Object.entries(DOCUMENT.paths).flatMap(([path, item]) =>
  Object.entries(item).map(([method, op]) => ({
    ...op,
    parameters: op.parameters ?? [],
    security: op.security ?? [],
    method: method.toUpperCase(),
    path,
  })),
)

export const operation = (operationId: string) => {
  const found = OPERATIONS.find((op) => op.operationId === operationId)
  if (!found) throw new Error(`no operation ${operationId} in the document`)
  return found
}

/** The scope an operation's bearer requirement names, if any. */
export const scopeOf = (op: Operation): string | undefined => op.security[0]?.Bearer?.[0]

// A CommonJS module: its class is the default export's `default` under Node's ESM interop.
type AjvClass = typeof Ajv2020Module.default
const Ajv2020: AjvClass =
  (Ajv2020Module as unknown as { default?: AjvClass }).default ??
  (Ajv2020Module as unknown as AjvClass)

const DOC_ID = 'https://dockgate.test/openapi.json'
const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: false })
ajv.addSchema({ $id: DOC_ID, components: DOCUMENT.components })

const compiled = new Map<JsonSchema, (value: unknown) => boolean>()

/** Whether a value is valid for a schema of the document (`$ref`s into its components resolve). */
export function validates(schema: JsonSchema, value: unknown): boolean {
  let validate = compiled.get(schema)
  if (!validate) {
    const fn = ajv.compile({
      $id: `${DOC_ID.replace('.json', '')}/${compiled.size}`,
      ...rebase(schema),
    })
    validate = (v: unknown) => fn(v) as boolean
    compiled.set(schema, validate)
  }
  return validate(value)
}

/** The errors of the last failed validation, for a failure message. */
export const lastErrors = () => JSON.stringify(ajv.errors ?? []).slice(0, 600)

/** Points local `#/components/…` references at the document added under DOC_ID. */
function rebase(schema: JsonSchema): JsonSchema {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components/', `"${DOC_ID}#/components/`),
  ) as JsonSchema
}

/**
 * A query parameter's value as the document types it: OpenAPI sends numbers and booleans as
 * text, so a value that reads as one counts as one (as OpenAPI validators read a query).
 */
export function queryValueValidates(schema: JsonSchema, text: string): boolean {
  if (validates(schema, text)) return true
  const types = [schema.type].flat()
  if (types.includes('integer') || types.includes('number')) {
    if (/^-?\d+(\.\d+)?$/.test(text) && validates(schema, Number(text))) return true
  }
  if (types.includes('boolean') && (text === 'true' || text === 'false')) {
    return validates(schema, text === 'true')
  }
  if (types.includes('null') && text === 'null') return validates(schema, null)
  return false
}
