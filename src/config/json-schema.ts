import { z } from 'zod';
import { ClientSchema, ConcordSettingsSchema, ParticipantSchema } from './schema.ts';

/** JSON Schemas of the three kinds of configuration file, for editors and partners' CI. */
export function jsonSchemas(): Record<'concord' | 'participant' | 'client', object> {
  // `input` describes what may be written in a file (defaults make fields optional there).
  const options = { io: 'input', unrepresentable: 'any' } as const;
  return {
    concord: { title: 'Concord settings (config/concord.yaml)', ...z.toJSONSchema(ConcordSettingsSchema, options) },
    participant: { title: 'Concord participant (config/participants/*.yaml)', ...z.toJSONSchema(ParticipantSchema, options) },
    client: { title: 'Concord client (config/clients/*.yaml)', ...z.toJSONSchema(ClientSchema, options) },
  };
}
