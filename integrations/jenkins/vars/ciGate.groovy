// ci-gate Jenkins shared library step: gate a freshly built image on policy before it is pushed.
//
//   def gate = ciGate image: 'oci-archive:image.tar', dockerfile: 'Dockerfile', policy: 'builtin:dod'
//   echo "ci-gate said ${gate.finalAction} (${gate.stopCount} STOP, ${gate.warnCount} WARN)"
//
// Options mirror `ci-gate gate` (see vars/ciGate.txt). It runs ci-gate with `sh`, records the JUnit
// report with `junit` (failures only make the build UNSTABLE in Jenkins, so the step itself fails the
// stage with `error` when ci-gate exits non-zero), archives the reports, optionally records the
// SARIF with warnings-ng (`recordIssues`), comments on the GitHub pull request or GitLab merge
// request when CHANGE_ID is set (token from `credentialsId`), and returns the result to the pipeline.

def call(Map config = [:]) {
    Map options = [
        image        : '',
        policy       : 'builtin:default',
        dockerfile   : '',
        tag          : '',
        vulnDb       : '',
        failOn       : 'stop',
        onError      : 'fail',
        comment      : 'auto',
        template     : '',
        backend      : '',
        reportsDir   : 'ci-gate-reports',
        junit        : true,
        archive      : true,
        recordSarif  : false,
        credentialsId: '',
        ciGate       : 'ci-gate',
    ]
    for (String key : config.keySet()) {
        if (!options.containsKey(key)) {
            error("ciGate: unknown option '${key}'; known options: ${options.keySet().join(', ')}")
        }
        options[key] = config[key]
    }
    if (!options.image) {
        error("ciGate: the image option is required, e.g. ciGate image: 'oci-archive:image.tar'")
    }

    String dir = options.reportsDir
    String outputsFile = "${dir}/ci-gate-outputs.env"
    boolean changeRequest = env.CHANGE_ID ? true : false
    List<String> command = [options.ciGate, 'gate', options.image,
                            '--policy', options.policy,
                            '--fail-on', options.failOn,
                            '--on-error', options.onError,
                            '--comment', changeRequest ? options.comment : 'off',
                            '--json', "${dir}/ci-gate.json",
                            '--junit', "${dir}/junit.xml",
                            '--sarif', "${dir}/ci-gate.sarif",
                            '--markdown', "${dir}/summary.md",
                            '--compliance', "${dir}/compliance.md"]
    if (options.dockerfile) { command += ['--dockerfile', options.dockerfile] }
    if (options.tag) { command += ['--tag', options.tag] }
    if (options.vulnDb) { command += ['--vuln-db', options.vulnDb] }
    if (options.template) { command += ['--template', options.template] }
    if (options.backend) { command += ['--backend', options.backend] }

    // A plain loop, not collect { }: closures in library code are best kept out of CPS paths.
    List<String> words = []
    for (Object word : command) {
        words << shellQuote(word as String)
    }
    String script = "mkdir -p ${shellQuote(dir)} && rm -f ${shellQuote(outputsFile)} && " +
        "CI_GATE_OUTPUT=${shellQuote(outputsFile)} ${words.join(' ')}"

    int status
    if (changeRequest && options.credentialsId) {
        // The token reaches ci-gate only through the environment; it is never part of the script.
        String variable = (env.CHANGE_URL ?: '').contains('/-/merge_requests/') ? 'CI_GATE_GITLAB_TOKEN' : 'CI_GATE_GITHUB_TOKEN'
        withCredentials([string(credentialsId: options.credentialsId, variable: variable)]) {
            status = sh(script: script, returnStatus: true)
        }
    } else {
        status = sh(script: script, returnStatus: true)
    }

    if (options.junit) {
        junit(testResults: "${dir}/junit.xml", allowEmptyResults: true)
    }
    if (options.archive) {
        archiveArtifacts(artifacts: "${dir}/**", allowEmptyArchive: true)
    }
    if (options.recordSarif) {
        recordIssues(tools: [sarif(pattern: "${dir}/ci-gate.sarif", id: 'ci-gate', name: 'ci-gate')],
                     skipPublishingChecks: true)
    }

    Map result = readOutputs(outputsFile)
    result.exitCode = status
    if (status == 1) {
        error("ci-gate: policy says ${result.finalAction ?: 'STOP'} for ${options.image} " +
              "(${result.stopCount ?: '?'} STOP, ${result.warnCount ?: '?'} WARN findings); see ${dir}/summary.md")
    }
    if (status != 0) {
        error("ci-gate could not decide (exit ${status}) for ${options.image}; see the log above, " +
              "or set onError: 'pass' to let the build continue unchecked")
    }
    return result
}

// KEY=value lines written by ci-gate (CI_GATE_OUTPUT) → [finalAction: 'STOP', stopCount: '3', …].
Map readOutputs(String path) {
    Map result = [:]
    if (!fileExists(path)) {
        return result
    }
    for (String line : readFile(path).split('\n')) {
        int equals = line.indexOf('=')
        if (equals <= 0) {
            continue
        }
        List<String> words = line.substring(0, equals).toLowerCase().split('_') as List<String>
        String key = words[0]
        for (int index = 1; index < words.size(); index++) {
            key += words[index].capitalize()
        }
        result[key] = line.substring(equals + 1).trim()
    }
    return result
}

// One shell word, whatever it contains.
String shellQuote(String text) {
    return "'" + text.replace("'", "'\"'\"'") + "'"
}
