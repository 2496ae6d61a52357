import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

type ReflectionResponse = {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_message: string };
};

/** What `grpcurl list` does: ask grpc.reflection.v1 for the service names. */
export async function listServices(address: string): Promise<string[]> {
  const response = await reflect(address, { list_services: '*' });
  return response.list_services_response?.service.map((s) => s.name) ?? [];
}

/** What `grpcurl describe SYMBOL` starts with: the serialized descriptors of the file defining it. */
export async function fileContainingSymbol(address: string, symbol: string): Promise<Buffer[]> {
  const response = await reflect(address, { file_containing_symbol: symbol });
  if (response.error_response) throw new Error(response.error_response.error_message);
  return response.file_descriptor_response?.file_descriptor_proto ?? [];
}

async function reflect(address: string, request: Record<string, string>): Promise<ReflectionResponse> {
  const root = join(dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto');
  const definition = protoLoader.loadSync(join(root, 'grpc/reflection/v1/reflection.proto'), { includeDirs: [root], keepCase: true });
  const proto = grpc.loadPackageDefinition(definition) as unknown as {
    grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
  };
  const client = new proto.grpc.reflection.v1.ServerReflection(address, grpc.credentials.createInsecure());
  try {
    return await new Promise((resolve, reject) => {
      const call = client.ServerReflectionInfo();
      call.on('data', (response: ReflectionResponse) => {
        resolve(response);
        call.end();
      });
      call.on('error', reject);
      call.write(request);
    });
  } finally {
    client.close();
  }
}
