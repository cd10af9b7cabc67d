// Runs a declarative Jenkinsfile as written, with the library step from vars/ciGate.groovy.
//
//   groovy test/pipelineHarness.groovy vars/ciGate.groovy Jenkinsfile scenario.json results.json
//
// scenario.json: {workspace, env: {..}, stages: [names to run], checkoutFrom: folder}. The pipeline
// DSL (pipeline, agent, environment, stages, stage, when/branch, steps, script) is interpreted here;
// `sh` really runs /bin/sh in the current `dir`, with the build environment; `checkout` copies
// checkoutFrom into the current dir (what the SCM checkout would bring); the other steps record
// their arguments; `error` and a failing `sh` throw as Jenkins does. The `@Library` line is what
// Jenkins reads to load the library; here the library is vars/ciGate.groovy itself. Stages not
// listed in `stages` are skipped (e.g. a Build that needs a Docker daemon).
import groovy.json.JsonOutput
import groovy.json.JsonSlurper

class StepError extends RuntimeException {
    StepError(String message) { super(message) }
}

class EnvironmentBlock {
    Map values
    EnvironmentBlock(Map values) { this.values = values }
    def propertyMissing(String name, value) { values[name] = value as String }
    def propertyMissing(String name) {
        if (name == 'env') { return values }
        throw new MissingPropertyException(name, EnvironmentBlock)
    }
}

File stepFile = new File(args[0])
File pipelineFile = new File(args[1])
Map scenario = new JsonSlurper().parse(new File(args[2])) as Map
File workspace = new File(scenario.workspace as String)
List calls = []
Map env = [:] + (scenario.env ?: [:])
List<String> directory = []
Map state = [skipped: false]

Closure here = { -> directory ? new File(workspace, directory.join("/")) : workspace }

Binding binding = new Binding()
binding.setVariable('env', env)
binding.setVariable('sh', { Object arguments ->
    Map options = arguments instanceof Map ? arguments as Map : [script: arguments as String]
    Map call = [step: 'sh', script: options.script, dir: directory.join('/')]
    calls << call
    ProcessBuilder builder = new ProcessBuilder('/bin/sh', '-e', '-c', options.script as String)
    builder.directory(here())
    env.each { key, value -> builder.environment().put(key as String, value as String) }
    builder.redirectErrorStream(true)
    Process process = builder.start()
    call.output = process.inputStream.text
    call.status = process.waitFor()
    if (options.returnStatus) { return call.status }
    if (call.status != 0) { throw new StepError("script returned exit code ${call.status}") }
    return options.returnStdout ? call.output : null
})
binding.setVariable('dir', { String path, Closure body ->
    directory << path
    here().mkdirs()
    try { return body.call() } finally { directory.remove(directory.size() - 1) }
})
binding.setVariable('scmGit', { Map arguments -> [class: 'GitSCM'] + arguments })
binding.setVariable('checkout', { Object scm ->
    calls << [step: 'checkout', dir: directory.join('/'), scm: scm]
    Process copy = new ProcessBuilder('cp', '-R', "${scenario.checkoutFrom}/.", here().path).inheritIO().start()
    if (copy.waitFor() != 0) { throw new StepError('checkout failed') }
})
binding.setVariable('echo', { Object message -> calls << [step: 'echo', message: message as String]; null })
binding.setVariable('error', { Object message ->
    calls << [step: 'error', message: message as String]
    throw new StepError(message as String)
})
binding.setVariable('junit', { Map arguments -> calls << [step: 'junit'] + arguments; null })
binding.setVariable('archiveArtifacts', { Map arguments -> calls << [step: 'archiveArtifacts'] + arguments; null })
binding.setVariable('fileExists', { String path -> new File(here(), path).exists() })
binding.setVariable('readFile', { String path -> new File(here(), path).getText('UTF-8') })

// The declarative pipeline DSL.
binding.setVariable('pipeline', { Closure body -> body.call() })
binding.setVariable('agent', { Object agent -> calls << [step: 'agent']; null })
binding.setVariable('label', { String name -> name })
binding.setVariable('environment', { Closure body ->
    body.resolveStrategy = Closure.DELEGATE_FIRST
    body.delegate = new EnvironmentBlock(env)
    body.call()
})
binding.setVariable('stages', { Closure body -> body.call() })
binding.setVariable('stage', { String name, Closure body ->
    if (!(name in (scenario.stages as List))) {
        calls << [step: 'stage', name: name, ran: false]
        return
    }
    state.skipped = false
    calls << [step: 'stage', name: name, ran: true]
    body.call()
})
binding.setVariable('branch', { String pattern -> env.BRANCH_NAME == pattern })
binding.setVariable('when', { Closure condition -> state.skipped = !condition.call() })
binding.setVariable('steps', { Closure body ->
    if (state.skipped) {
        calls << [step: 'when', skipped: true]
        return
    }
    body.call()
})
binding.setVariable('script', { Closure body -> body.call() })

Script library = new GroovyShell(binding).parse(stepFile)
binding.setVariable('ciGate', { Map config -> library.invokeMethod('call', [config] as Object[]) })

String text = pipelineFile.getText('UTF-8')
def libraryLine = (text =~ /(?m)^@Library\('([^']+)'\) _\s*$/)
Map outcome = [calls: calls, library: libraryLine.find() ? libraryLine.group(1) : null]
try {
    new GroovyShell(binding).evaluate(text.replaceAll(/(?m)^@Library\('[^']+'\) _\s*$/, ''))
    outcome.result = 'SUCCESS'
} catch (StepError failure) {
    outcome.result = 'FAILURE'
    outcome.error = failure.message
}
new File(args[3]).text = JsonOutput.prettyPrint(JsonOutput.toJson(outcome))
