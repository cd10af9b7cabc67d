// Runs vars/ciGate.groovy's call() with the Jenkins steps stood in by recording closures.
//
//   groovy test/ciGateHarness.groovy vars/ciGate.groovy scenarios.json results.json
//
// scenarios.json: [{name, workspace, env: {..}, credentials: {id: secret}, config: {..}}]. Each
// scenario loads the step afresh. `sh` really runs the script with /bin/sh in the workspace (so the
// real ci-gate runs), with the build environment plus what withCredentials bound; the other steps
// (junit, archiveArtifacts, recordIssues, publishHTML, sarif, string, withCredentials, readFile, fileExists,
// echo, error) record their arguments; `error` throws like Jenkins's AbortException. results.json gets,
// per scenario, the recorded calls, the returned map and the error message.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class StepError extends RuntimeException {
    StepError(String message) { super(message) }
}

File stepFile = new File(args[0])
List scenarios = new JsonSlurper().parse(new File(args[1])) as List
Map results = [:]

for (Map scenario : scenarios) {
    List calls = []
    Map credentialEnv = [:]
    File workspace = new File(scenario.workspace as String)
    Binding binding = new Binding()
    binding.setVariable('env', scenario.env ?: [:])
    binding.setVariable('sh', { Map arguments ->
        calls << [step: 'sh', script: arguments.script, returnStatus: arguments.returnStatus,
                  credentials: credentialEnv.keySet().sort()]
        ProcessBuilder builder = new ProcessBuilder('/bin/sh', '-e', '-c', arguments.script as String)
        builder.directory(workspace)
        Map<String, String> environment = builder.environment()
        (scenario.env ?: [:]).each { key, value -> environment.put(key as String, value as String) }
        credentialEnv.each { key, value -> environment.put(key as String, value as String) }
        builder.redirectErrorStream(true)
        Process process = builder.start()
        String output = process.inputStream.text
        int status = process.waitFor()
        calls[-1].output = output
        calls[-1].status = status
        return arguments.returnStatus ? status : output
    })
    binding.setVariable('string', { Map arguments -> [kind: 'string'] + arguments })
    binding.setVariable('withCredentials', { List bindings, Closure body ->
        calls << [step: 'withCredentials', bindings: bindings]
        for (Map item : bindings) {
            credentialEnv[item.variable] = (scenario.credentials ?: [:])[item.credentialsId]
        }
        try {
            return body.call()
        } finally {
            credentialEnv.clear()
        }
    })
    binding.setVariable('junit', { Map arguments -> calls << [step: 'junit'] + arguments; null })
    binding.setVariable('archiveArtifacts', { Map arguments -> calls << [step: 'archiveArtifacts'] + arguments; null })
    binding.setVariable('sarif', { Map arguments -> [tool: 'sarif'] + arguments })
    binding.setVariable('recordIssues', { Map arguments -> calls << [step: 'recordIssues'] + arguments; null })
    binding.setVariable('publishHTML', { Map arguments -> calls << [step: 'publishHTML'] + arguments; null })
    binding.setVariable('fileExists', { String path -> new File(workspace, path).exists() })
    binding.setVariable('readFile', { String path -> new File(workspace, path).getText('UTF-8') })
    binding.setVariable('echo', { Object message -> calls << [step: 'echo', message: message as String]; null })
    binding.setVariable('error', { Object message ->
        calls << [step: 'error', message: message as String]
        throw new StepError(message as String)
    })

    Script step = new GroovyShell(binding).parse(stepFile)
    Map outcome = [calls: calls]
    try {
        outcome.returned = step.invokeMethod('call', [scenario.config] as Object[])
    } catch (StepError failure) {
        outcome.error = failure.message
    }
    results[scenario.name] = outcome
}

new File(args[2]).text = JsonOutput.prettyPrint(JsonOutput.toJson(results))
